"""How much slower a normal chat answer gets while one visitor sends hostile messages and another builds an
export: the `chat_slowdown_under_load` figure of `bench --json` (target: at most SLOWDOWN_TARGET).

A speed is a benchmark figure, not a test (a shared CI machine's load moves it), so the test suite checks
only what cannot depend on the machine: the work each message costs, and that every visitor gets answers.

    from kqv_demo.stress.chat_under_load import measure
    measure(explainer, bank, runtime)   # {"quiet_ms": 120.0, "busy_ms": 340.0, "slowdown": 2.8, ...}
"""

from __future__ import annotations

import statistics
import threading
import time

from kqv_demo.content.loader import Bank
from kqv_demo.explainer.chat import Explainer
from kqv_demo.exports.live import runs_needed, compute_run
from kqv_demo.classroom.resolve import resolve_round
from kqv_demo.quiz.resolve import round_items
from kqv_demo.runtime import Runtime

NORMAL = "so attention uses KL divergence, right?"
# 1,000 characters of different short sentences on the subject: before the caps, every one of them was
# embedded in one batch padded to the whole message's length (about 40 x 256 tokens, 10 s and more).
HOSTILE = " ".join(f"Keys number {i} are stored in memory." for i in range(100))[:1000]
# The normal answer's median under load, as a multiple of its quiet median. Three busy threads share
# two cores and one interpreter lock, so some slowdown is physics: measured 2.5-3.1x on a 2-core VM
# with other jobs running (4.1x once on a busy CI machine, with the stance model's pass added). One lock
# for both models gave 12-13x, one MiniLM pass at a time 7-17x, and the code before these fixes (40
# sentences in one padded batch) 100x and more.
SLOWDOWN_TARGET = 4.0


def answer_ms(explainer: Explainer, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        explainer.answer(NORMAL)
        times.append((time.perf_counter() - started) * 1000)
    return times


def _export_work(bank: Bank, runtime: Runtime, stop: threading.Event) -> None:
    """What an export of the core round does when nothing is cached: every demo it needs, computed
    and charted (exports.live.compute_run, the work behind the process-wide cache), over and over."""
    spec = resolve_round(bank, "core-10")
    claim_runs, prediction_runs = runs_needed(bank, round_items(bank, spec), figures=True)
    keys = list(dict.fromkeys([*claim_runs.values(), *prediction_runs.values()]))
    while not stop.is_set():
        for key in keys:
            if stop.is_set():
                return
            compute_run(runtime, key).figure()


def under_load(explainer: Explainer, bank: Bank, runtime: Runtime, count: int) -> tuple[list[float], int]:
    """`count` normal answers (ms) while one thread sends the hostile message over and over and another
    computes export figures; and how many hostile answers came back meanwhile. A failure in either
    thread is raised here."""
    stop, failures, hostile_answers = threading.Event(), [], []

    def hostile_visitor() -> None:
        try:
            while not stop.is_set():
                hostile_answers.append(explainer.answer(HOSTILE))
        except BaseException as error:  # raised below, in the caller's thread
            failures.append(error)

    def exporter() -> None:
        try:
            _export_work(bank, runtime, stop)
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=hostile_visitor), threading.Thread(target=exporter)]
    for thread in threads:
        thread.start()
    try:
        busy = answer_ms(explainer, count)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    if failures:
        raise failures[0]
    return busy, len(hostile_answers)


def measure(explainer: Explainer, bank: Bank, runtime: Runtime, rounds: int = 3, per_phase: int = 8) -> dict:
    """Quiet and loaded phases alternate `rounds` times, so a change in the machine's other load affects
    both sides of the ratio alike."""
    answer_ms(explainer, 3)  # warm-up
    quiet, busy, hostile_answers = [], [], 0
    for _ in range(rounds):
        quiet += answer_ms(explainer, per_phase)
        loaded, answered = under_load(explainer, bank, runtime, per_phase)
        busy, hostile_answers = busy + loaded, hostile_answers + answered
    quiet_ms, busy_ms = statistics.median(quiet), statistics.median(busy)
    return {"quiet_ms": round(quiet_ms, 1), "busy_ms": round(busy_ms, 1),
            "slowdown": round(busy_ms / quiet_ms, 2), "hostile_answers": hostile_answers}
