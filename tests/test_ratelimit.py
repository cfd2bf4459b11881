"""Per-session token buckets: a burst, then one request per interval; a learner's pace is never refused."""

from __future__ import annotations

import sys
import threading
import time

import pytest

from kqv_demo.errors import UserInputError
from kqv_demo.ratelimit import CHAT, DEMO, EXPORT, Limit, RateLimited, RateLimiter, SharedSlot, check


class Clock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


LIMIT = Limit("test", burst=3, every_seconds=2.0, template="wait {wait}.")


def test_a_burst_is_allowed_then_one_request_per_interval():
    clock = Clock()
    limiter = RateLimiter(LIMIT, clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(2.0)
    clock.now += 1.5
    assert limiter.take("a") == pytest.approx(0.5)  # refused: nothing spent, 0.5 s to go
    clock.now += 0.5
    assert limiter.take("a") == 0.0
    assert limiter.take("a") == pytest.approx(2.0)


def test_a_long_pause_refills_the_bucket_only_up_to_the_burst():
    clock = Clock()
    limiter = RateLimiter(LIMIT, clock)
    for _ in range(3):
        limiter.take("a")
    clock.now += 3600
    assert [limiter.take("a") for _ in range(4)][-1] > 0  # 3 again, not 1,800


def test_sessions_have_buckets_of_their_own():
    limiter = RateLimiter(LIMIT, Clock())
    for _ in range(3):
        limiter.take("a")
    assert limiter.take("a") > 0 and limiter.take("b") == 0.0


def test_check_raises_a_user_input_error_that_says_how_long_to_wait():
    clock = Clock()
    limiter = RateLimiter(CHAT, clock)
    for _ in range(CHAT.burst):
        check(limiter, "a")
    with pytest.raises(RateLimited) as refused:
        check(limiter, "a")
    assert isinstance(refused.value, UserInputError)  # the pages show it like any input error
    assert str(refused.value) == "You are sending messages faster than I can answer; wait 3 seconds."
    assert refused.value.wait_seconds == pytest.approx(CHAT.every_seconds)


def test_the_message_rounds_the_wait_up_and_says_second_or_seconds():
    assert LIMIT.message(0.2) == "wait 1 second."
    assert LIMIT.message(1.01) == "wait 2 seconds."


def test_concurrent_requests_of_one_session_never_spend_more_than_the_burst():
    """Streamlit runs each session's script in a thread of its own, and a visitor can open many tabs."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, so that a race shows
    try:
        for _ in range(20):
            limiter = RateLimiter(Limit("t", burst=50, every_seconds=60.0, template="wait {wait}."), Clock())
            granted = []
            start = threading.Barrier(8)

            def client(limiter: RateLimiter, granted: list[bool], start: threading.Barrier) -> None:
                start.wait()
                granted.extend(limiter.take("a") == 0.0 for _ in range(20))

            threads = [threading.Thread(target=client, args=(limiter, granted, start)) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert sum(granted) == 50
    finally:
        sys.setswitchinterval(before)


def test_the_number_of_sessions_remembered_is_bounded():
    limiter = RateLimiter(LIMIT, Clock(), max_sessions=100)
    for number in range(1000):
        limiter.take(f"visitor-{number}")
    assert len(limiter._buckets) == 100


@pytest.mark.parametrize("limit, pace_seconds, count", [
    (CHAT, 5.0, 120),  # a message every 5 s for 10 minutes: faster than anyone types and reads
    (DEMO, 6.0, 100),  # a new demo input every 6 s (type, run, read the result) for 10 minutes
    (EXPORT, 90.0, 20),  # a new export every 90 s for half an hour
])
def test_a_learner_at_a_brisk_pace_is_never_refused(limit: Limit, pace_seconds: float, count: int):
    clock = Clock()
    limiter = RateLimiter(limit, clock)
    for _ in range(count):
        assert limiter.take("learner") == 0.0
        clock.now += pace_seconds


@pytest.mark.parametrize("limit", [CHAT, DEMO, EXPORT])
def test_a_first_burst_like_a_learners_is_never_refused(limit: Limit):
    """Clicking the examples and quick follow-ups, sliding through layers, building each format once."""
    limiter = RateLimiter(limit, Clock())
    assert all(limiter.take("learner") == 0.0 for _ in range(limit.burst))


@pytest.mark.parametrize("limit", [CHAT, DEMO, EXPORT])
def test_a_script_in_a_loop_is_held_to_one_request_per_interval(limit: Limit):
    clock = Clock()
    limiter = RateLimiter(limit, clock)
    granted = 0
    for _ in range(1000):  # a request every 0.1 s for 100 s
        granted += limiter.take("script") == 0.0
        clock.now += 0.1
    assert granted <= limit.burst + 100 / limit.every_seconds + 1


class SleepingClock(Clock):
    """A clock whose sleep moves it on, recording each sleep."""

    def __init__(self) -> None:
        super().__init__()
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_shared_slot_rests_in_proportion_to_the_work_so_its_share_stays_bounded():
    clock = SleepingClock()
    slot = SharedSlot(share=0.5, clock=clock, sleep=clock.sleep)
    with slot:  # free and rested: no wait
        clock.now += 2.0  # a request that took 2 s
    with slot:  # right after it: waits 2 s, so the work had at most half of the time
        clock.now += 1.0
    clock.now += 5.0  # a quiet moment: rested again
    with slot:
        pass
    assert clock.slept == [2.0]


def test_a_shared_slot_admits_one_request_at_a_time():
    slot = SharedSlot(share=1.0)
    inside, most = [0], [0]
    guard = threading.Lock()

    def request() -> None:
        with slot:
            with guard:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.01)
            with guard:
                inside[0] -= 1

    threads = [threading.Thread(target=request) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 1
