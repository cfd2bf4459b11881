"""Per-session rate limits for the requests that start expensive work (a token bucket per session).

    chat = RateLimiter(CHAT)
    wait = chat.take(session_id)      # 0.0: go ahead (one token spent); else seconds until one is free
    if wait:
        show(chat.limit.message(wait))    # "You are sending messages faster than I can answer; wait 3 seconds."
    check(chat, session_id)           # the same, raising RateLimited (a UserInputError) with that message

Each session may spend `burst` requests at once; after that one more every `every_seconds`. The
limits (`CHAT`, `EXPORT`, `DEMO`) are set well above what a person does (a learner types, reads and
thinks between messages), so only a script sending requests in a loop ever waits. A refused request
costs nothing. No Streamlit here: kqv_demo/ui/resources.py applies the limits to the running session.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from kqv_demo.errors import UserInputError

Clock = Callable[[], float]


@dataclass(frozen=True)
class Limit:
    name: str
    burst: int  # requests a session may make at once
    every_seconds: float  # then one more each time this much time has passed
    template: str  # what the learner is told; "{wait}" becomes "3 seconds"

    def message(self, wait_seconds: float) -> str:
        """What the learner is told: the template with the wait rounded up ("wait 3 seconds")."""
        seconds = max(1, math.ceil(wait_seconds))
        return self.template.format(wait=f"{seconds} second{'s' if seconds != 1 else ''}")


@dataclass
class _Bucket:
    tokens: float
    updated: float


def now_seconds() -> float:
    """The rate limits' clock: monotonic seconds."""
    return time.monotonic()


class RateLimiter:
    """A token bucket per session id, thread-safe. At most `max_sessions` buckets are kept (the least
    recently used go first; a forgotten session starts again with a full bucket, as a new one does)."""

    def __init__(self, limit: Limit, clock: Clock | None = None, max_sessions: int = 10_000) -> None:
        if limit.burst < 1 or limit.every_seconds <= 0:
            raise ValueError(f"{limit.name}: burst must be at least 1 and every_seconds positive")
        self.limit = limit
        self._clock = clock  # None: `now()`, looked up at each call (so a test can stop the clock)
        self._max_sessions = max_sessions
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, session: str, cost: float = 1.0) -> float:
        """Spend `cost` tokens of `session`'s bucket if it holds them and return 0.0; otherwise spend
        nothing and return the seconds until it will."""
        with self._lock:
            bucket = self._refilled(session)
            if bucket.tokens >= cost:
                bucket.tokens -= cost
                return 0.0
            return (cost - bucket.tokens) * self.limit.every_seconds

    def _refilled(self, session: str) -> _Bucket:
        now = self._clock() if self._clock else now_seconds()
        bucket = self._buckets.get(session)
        if bucket is None:
            bucket = self._buckets[session] = _Bucket(float(self.limit.burst), now)
            while len(self._buckets) > self._max_sessions:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(session)
            earned = max(0.0, now - bucket.updated) / self.limit.every_seconds
            bucket.tokens = min(float(self.limit.burst), bucket.tokens + earned)
            bucket.updated = now
        return bucket


# A learner asks, reads the answer and thinks: a few messages a minute. 10 at once, then one every 3 s
# (20 a minute) leaves room for clicking the example questions and quick "why?"/"show me" follow-ups.
CHAT = Limit("chat", burst=10, every_seconds=3.0,
             template="You are sending messages faster than I can answer; wait {wait}.")
# Only exports that compute figures count (cached figures cost no model work): an instructor builds the
# handout, the PDF and the Anki deck of a round, each once.
EXPORT = Limit("export", burst=4, every_seconds=60.0,
               template="You are asking for new exports faster than I can build them; wait {wait}.")
# Only demo runs on new inputs count (a result already computed is shared). A run on a long prompt
# takes seconds of CPU; a learner types a sentence, moves a slider and reads the result: 12 at once,
# then one every 5 s (12 a minute).
DEMO = Limit("demo", burst=12, every_seconds=5.0,
             template="You are starting demo runs faster than I can compute them; wait {wait}.")


class RateLimited(UserInputError):
    """Raised by `check` when a session must wait; the message says how long (shown like any input error)."""

    def __init__(self, message: str, wait_seconds: float) -> None:
        super().__init__(message)
        self.wait_seconds = wait_seconds


def check(limiter: RateLimiter, session: str, cost: float = 1.0) -> None:
    """Spend `cost` of `session`'s bucket, or raise RateLimited with the message to show."""
    wait = limiter.take(session, cost)
    if wait:
        raise RateLimited(limiter.limit.message(wait), wait)


class SharedSlot:
    """One request at a time in the whole process, and after each a pause in proportion to how long it
    took, so that this kind of work never takes more than `share` of one core, however many sessions
    send it. A request that finds the slot free and rested starts at once: a learner alone never waits."""

    def __init__(self, share: float, clock: Clock = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        self.share = share
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._free_at = 0.0

    def __enter__(self) -> None:
        self._lock.acquire()
        wait = self._free_at - self._clock()
        if wait > 0:
            self._sleep(wait)
        self._started = self._clock()

    def __exit__(self, *exc_info: object) -> None:
        took = self._clock() - self._started
        self._free_at = self._clock() + took * (1 / self.share - 1)
        self._lock.release()


# Per-session limits do not stop a script that opens a new session for each request. So the work such a
# script can start without a key, a chat answer and the check of an uploaded round file (up to 0.3 s of
# CPU each for the longest inputs), goes through one slot for the whole process that it may use at most
# a third of the time: however many sessions send it, the students' quiz pages keep most of the CPU and
# the GIL (a class of 8 with a visitor sending both back to back: students' p95 2.4x the quiet run
# without the slot, 2.1x with half of the time). (Model demos and exports have their own limit: one
# SmolLM2 pass at a time, see kqv_demo/runtime.py.)
BULK_REQUESTS = SharedSlot(share=1 / 3)
