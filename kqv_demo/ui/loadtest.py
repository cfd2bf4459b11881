"""A class at once: N simulated students play one class round against a running server, over the websocket.

`python -m kqv_demo class30` creates a class round through the library (classroom.create_class) and
starts its own server (a temporary SQLite database, the same KQV_* settings) unless `--url` names a
running one, which must be on this machine (loopback only). Every student is a headless browser tab:
it opens the class link (?class=CODE), enters a unique name and answers every question with a random
choice and confidence, pressing the buttons a person would, then opens its results.

It lives in kqv_demo/ui/ because it speaks Streamlit's wire protocol (kqv_demo/ui/wire_client.py); the
command line runs it in a process of its own (`python -m kqv_demo.ui.loadtest`), so that the library
never imports Streamlit.

Think-time model: each student arrives at a uniform random moment in the first `think_max` seconds, and
waits uniform(`think_min`, `think_max`) seconds before each action (reading, choosing). `burst` removes
every wait: all students connect at once and act as fast as the server answers.

Measured: every interaction's latency, from sending the action to the end of the run that answers it
(including any st.rerun() the page does); errors (an exception on the page, a page that did not move on
as a person would expect, a run not finished within 60 s, a disconnect, the overall time limit); and
afterwards, in the database, that each student's answers were all stored, once each.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import math
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from pydantic import BaseModel

from kqv_demo.classroom import create_class
from kqv_demo.content.loader import load_bank
from kqv_demo.errors import KqvError, UserInputError
from kqv_demo.quiz.resolve import resolve_round, round_items
from kqv_demo.settings import PROJECT_ROOT
from kqv_demo.storage import Store
from kqv_demo.ui.wire_client import AppTab, Page, ProtocolError, Widget

MAX_STUDENTS = 60
MAX_SECONDS = 1800
QUIZ_PAGE = "quiz"
NUMERIC_GUESS = "1"


class ClassReport(BaseModel):
    students: int
    round: str
    burst: bool
    think_s: tuple[float, float]
    interactions: int
    p50_ms: float
    p95_ms: float
    max_ms: float
    errors: int
    error_samples: list[str]
    answers_expected: int
    answers_stored: int
    answers_duplicated: int
    finished_students: int
    seconds: float

    def lines(self) -> list[str]:
        think = "none (burst)" if self.burst else f"uniform {self.think_s[0]:g}-{self.think_s[1]:g} s"
        return [
            f"students            {self.students} ({self.finished_students} finished the round '{self.round}')",
            f"think time          {think}",
            f"interactions        {self.interactions} in {self.seconds:.0f} s",
            f"latency p50/p95/max {self.p50_ms:.0f} / {self.p95_ms:.0f} / {self.max_ms:.0f} ms",
            f"errors              {self.errors}",
            (f"answers stored      {self.answers_stored} of {self.answers_expected} expected"
             f" ({self.answers_duplicated} duplicated)"),
            *(f"  {sample}" for sample in self.error_samples),
        ]


# --- limits ----------------------------------------------------------------------------------
def loopback_url(url: str) -> str:
    """`url` without a trailing slash if it points at this machine; otherwise a UserInputError."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserInputError(f"--url must look like http://127.0.0.1:8501, not {url!r}.")
    host = parts.hostname
    try:
        local = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = False
    if not local:
        raise UserInputError(f"The load test only runs against this machine (127.0.0.1, ::1 or localhost), "
                             f"not {host!r}.")
    return url.strip().rstrip("/")


def check_limits(students: int, seconds: float, think: tuple[float, float]) -> None:
    if not 1 <= students <= MAX_STUDENTS:
        raise UserInputError(f"--students must be between 1 and {MAX_STUDENTS}, not {students}.")
    if not 10 <= seconds <= MAX_SECONDS:
        raise UserInputError(f"--timeout must be between 10 and {MAX_SECONDS} seconds, not {seconds:g}.")
    low, high = think
    if not 0 <= low <= high <= 60:
        raise UserInputError(f"Think time must be 0 <= min <= max <= 60 seconds, not {low:g}-{high:g}.")


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


# --- our own server --------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_healthy(url: str, server: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise KqvError(f"The app server exited with code {server.returncode}:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise KqvError(f"The app server did not answer {url}/_stcore/health within {timeout:.0f} s:\n{_tail(log)}")


def _tail(log: Path, lines: int = 15) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def own_server(database_url: str, log: Path) -> Iterator[str]:
    """`streamlit run app.py` on a free loopback port with this database; stopped on the way out, always."""
    port = _free_port()
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
               "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    with log.open("w") as output:
        server = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=output, stderr=subprocess.STDOUT,
                                  env={**os.environ, "DATABASE_URL": database_url})
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, server, log)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# --- one student -----------------------------------------------------------------------------
@dataclass
class Student:
    number: int
    name: str
    rng: random.Random
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    answered: int = 0
    finished: bool = False
    round_key: str | None = None


@dataclass(frozen=True)
class Plan:
    ws_url: str
    query_string: str
    think: tuple[float, float]
    burst: bool
    run_timeout: float


@dataclass(frozen=True)
class Run:
    round_name: str
    feedback: str | None
    students: int
    think: tuple[float, float]
    burst: bool
    seconds: float
    seed: int
    progress: Callable[[str], None]


class Stuck(Exception):
    """The page shows something this student cannot act on."""


async def play(student: Student, plan: Plan) -> None:
    tab = AppTab(plan.ws_url, QUIZ_PAGE, plan.query_string, plan.run_timeout)
    try:
        if not plan.burst:
            await asyncio.sleep(student.rng.uniform(0, plan.think[1]))
        page = await _timed(student, tab.open())
        while (step := _next_step(student, tab, page)) is not None:
            if not plan.burst:
                await asyncio.sleep(student.rng.uniform(*plan.think))
            page = await step()
            student.round_key = _query_value(tab.query_string, "r") or student.round_key
        student.finished = True
    except (ProtocolError, Stuck) as failure:
        student.errors.append(f"student {student.number} after {student.answered} answers: {failure}")
    finally:
        await tab.close()


async def _timed(student: Student, action: Awaitable[tuple[Page, float]]) -> Page:
    page, seconds = await action
    student.latencies_ms.append(seconds * 1000)
    return page


def _shown(page: Page) -> str:
    return " | ".join(page.problems + page.alerts + page.texts)[:400]


def _answer_button(page: Page) -> Widget | None:
    return page.button("Check my answer") or page.button("Save my answer")


def _shows_a_question(page: Page) -> bool:
    return _answer_button(page) is not None


def _next_step(student: Student, tab: AppTab, page: Page) -> Callable[[], Awaitable[Page]] | None:
    """What a student does on this page (a function that does it and checks the page moved on), or None
    on the results page.

    Handles both quiz flows: a class link (?class=CODE: name, then the round) and a round link
    (?round=core-10: name, "Start this round"); feedback after each answer ("Check my answer", then
    "Next question") or at the end ("Save my answer", then straight to the next question).
    """
    if page.problems:
        raise Stuck("; ".join(page.problems))
    if (name_box := page.find("text_input", "Your name")) is not None:
        submit = _submitter(page, name_box.form_id)
        return lambda: _step(student, tab.submit(submit, {name_box: student.name}), "the name to be accepted",
                             lambda after: after.find("text_input", "Your name") is None)
    if (start := page.button("Start this round")) is not None:
        return lambda: _step(student, tab.click(start), "the first question", _shows_a_question)
    if (submit := _answer_button(page)) is not None:
        return lambda: _answer(student, tab, page, submit)
    if (more := page.button("Next question")) is not None:
        return lambda: _step(student, tab.click(more), "the next question", _shows_a_question)
    if (results := page.button("See my results")) is not None:
        return lambda: _step(student, tab.click(results), "the round's results",
                             lambda after: not _shows_a_question(after))
    if student.answered == 0:
        raise Stuck(f"no question to answer; the page shows: {_shown(page)}")
    return None


async def _step(student: Student, action: Awaitable[tuple[Page, float]], expected: str,
                moved_on: Callable[[Page], bool]) -> Page:
    page = await _timed(student, action)
    if page.problems or not moved_on(page):
        raise Stuck(f"expected {expected}; the page shows: {_shown(page)}")
    return page


async def _answer(student: Student, tab: AppTab, page: Page, submit: Widget) -> Page:
    def accepted(after: Page) -> bool:
        button = _answer_button(after)
        return button is None or button.form_id != submit.form_id

    page = await _step(student, tab.submit(submit, _choose(student, page, submit.form_id)),
                       "the answer to be accepted", accepted)
    student.answered += 1
    return page


def _submitter(page: Page, form_id: str) -> Widget:
    button = next((w for w in page.widgets if w.is_form_submitter and w.form_id == form_id), None)
    if button is None:
        raise Stuck(f"form {form_id!r} has no submit button")
    return button


def _choose(student: Student, page: Page, form_id: str) -> dict[Widget, str]:
    """Any answer and any confidence: the load test measures the server, not the student."""
    fields = [w for w in page.widgets if w.form_id == form_id and w.kind != "button"]
    sure = next((w for w in fields if w.label.startswith("How sure")), None)
    response = next((w for w in fields if w.label.startswith("Your answer")), None)
    if sure is None or response is None:
        raise Stuck("the answer form lacks its answer or confidence field")
    answer = student.rng.choice(response.options) if response.kind == "radio" else NUMERIC_GUESS
    return {response: answer, sure: student.rng.choice(sure.options)}


def _query_value(query_string: str, key: str) -> str | None:
    values = parse_qs(query_string).get(key)
    return values[0] if values else None


# --- the class -------------------------------------------------------------------------------
async def _run_class(students: list[Student], plan: Plan, seconds: float) -> None:
    tasks = [asyncio.create_task(play(student, plan)) for student in students]
    _done, pending = await asyncio.wait(tasks, timeout=seconds)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for student, task in zip(students, tasks):
        if task in pending:
            student.errors.append(f"student {student.number}: not finished within the {seconds:.0f} s limit")


async def _warm_up(plan: Plan) -> None:
    """One page view first, as the instructor would: the server's first run imports and loads the bank."""
    tab = AppTab(plan.ws_url, QUIZ_PAGE, plan.query_string, run_timeout=300)
    try:
        page, _seconds = await tab.open()
    except ProtocolError as failure:
        raise KqvError(f"The app server did not serve the quiz page: {failure}") from None
    finally:
        await tab.close()
    if page.problems:
        raise KqvError(f"The quiz page shows a problem before any student joined: {'; '.join(page.problems)}")


def stored_answers(store: Store, students: list[Student]) -> tuple[int, int]:
    """(answers stored, answers stored more than once) for the students' rounds.

    A student whose stored answers differ from the answers the server confirmed gets an error.
    """
    stored = duplicated = 0
    for student in students:
        found = store.round(student.round_key) if student.round_key else None
        item_ids = [answer.item_id for answer in store.answers(found.id)] if found else []
        stored += len(set(item_ids))
        duplicated += len(item_ids) - len(set(item_ids))
        if len(set(item_ids)) != student.answered:
            student.errors.append(f"student {student.number}: {student.answered} answers confirmed on the page, "
                                  f"{len(set(item_ids))} in the database")
    return stored, duplicated


def run_class(students: int = 30, url: str | None = None, round_name: str = "core-10",
              think: tuple[float, float] = (1.0, 4.0), burst: bool = False, seconds: float = 300,
              database_url: str | None = None, feedback: str | None = None, seed: int = 0,
              progress: Callable[[str], None] = lambda step: None) -> ClassReport:
    """Drive `students` simulated students through a new class round of `round_name`.

    Starts an own server with a temporary database unless `url` names a running one; then the class is
    created in `database_url` (default: $DATABASE_URL), which must be the database that server uses.
    `feedback` ("immediate" or "end") overrides the round's own feedback setting.
    """
    check_limits(students, seconds, think)
    run = Run(round_name, feedback, students, think, burst, seconds, seed, progress)
    if url is not None:
        url = loopback_url(url)
        store = Store(database_url)
        return _measure(url, store, class_link(store, round_name, feedback), run)
    with tempfile.TemporaryDirectory(prefix="kqv-class-") as scratch:
        own_database = f"sqlite:///{scratch}/class.sqlite3"
        store = Store(own_database)
        try:
            link = class_link(store, round_name, feedback)
            progress("starting an own server")
            with own_server(own_database, Path(scratch) / "streamlit.log") as own_url:
                return _measure(own_url, store, link, run)
        finally:
            store.engine.dispose()


def class_link(store: Store, round_name: str, feedback: str | None) -> tuple[str, int]:
    """A new class round of `round_name`: the link's query string and the number of questions per student."""
    bank = load_bank(dialogue=False)
    spec = resolve_round(bank, round_name, store)
    if feedback is not None:
        spec = spec.model_copy(update={"feedback": feedback})
    code, _instructor_key = create_class(store, bank, spec)
    return urlencode({"class": code}), len(round_items(bank, spec))


def _measure(url: str, store: Store, link: tuple[str, int], run: Run) -> ClassReport:
    query_string, expected = link
    ws_url = "ws" + url.removeprefix("http") + "/_stcore/stream"
    plan = Plan(ws_url, query_string, run.think, run.burst, run_timeout=min(60.0, run.seconds))
    tag = f"{time.time_ns() % 10**8:08d}"
    students = [Student(n, f"Load test {tag} student {n:02d}", random.Random(run.seed * 1000 + n))
                for n in range(1, run.students + 1)]
    run.progress("opening the quiz page once (the server's first run loads the bank)")
    asyncio.run(_warm_up(plan))
    run.progress(f"{run.students} students playing {run.round_name} ({expected} questions each)")
    started = time.perf_counter()
    asyncio.run(_run_class(students, plan, run.seconds))
    elapsed = time.perf_counter() - started
    run.progress("checking the answers in the database")
    stored, duplicated = stored_answers(store, students)  # before counting errors: it may add some
    latencies = [ms for student in students for ms in student.latencies_ms]
    errors = [error for student in students for error in student.errors]
    return ClassReport(
        students=run.students, round=run.round_name, burst=run.burst, think_s=run.think,
        interactions=len(latencies), p50_ms=round(percentile(latencies, 0.50), 1),
        p95_ms=round(percentile(latencies, 0.95), 1), max_ms=round(max(latencies, default=0.0), 1),
        errors=len(errors), error_samples=errors[:10], answers_expected=expected * run.students,
        answers_stored=stored, answers_duplicated=duplicated,
        finished_students=sum(s.finished and not s.errors for s in students), seconds=round(elapsed, 1),
    )


def _think_range(text: str) -> tuple[float, float]:
    low, sep, high = text.partition("-")
    try:
        return (float(low), float(high if sep else low))
    except ValueError:
        raise argparse.ArgumentTypeError(f"think time is MIN-MAX seconds (e.g. 1-4), not {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    class30 = argparse.ArgumentParser(prog="python -m kqv_demo class30",
                                      description="Load test: simulated students play a class round at once.")
    class30.add_argument("--students", type=int, default=30, help="how many (1-60, default 30)")
    class30.add_argument("--url", help="a running server on this machine (default: start an own one)")
    class30.add_argument("--round", default="core-10", metavar="NAME",
                         help="built-in round id, round file or class code to make the class round from")
    class30.add_argument("--think", type=_think_range, default=(1.0, 4.0), metavar="MIN-MAX",
                         help="seconds a student waits before each action, uniform (default 1-4)")
    class30.add_argument("--burst", action="store_true", help="no think time: every student acts at once")
    class30.add_argument("--feedback", choices=["immediate", "end"], help="override the round's feedback mode")
    class30.add_argument("--timeout", type=float, default=300, help="limit for the whole class, seconds (10-1800)")
    class30.add_argument("--database-url", help="with --url: the server's database (default: $DATABASE_URL)")
    class30.add_argument("--seed", type=int, default=0, help="seed for the students' choices and think times")
    class30.add_argument("--json", action="store_true", help="print one JSON object")
    return class30


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        report = run_class(
            students=args.students, url=args.url, round_name=args.round, think=args.think, burst=args.burst,
            seconds=args.timeout, database_url=args.database_url, feedback=args.feedback, seed=args.seed,
            progress=lambda step: print(f"class30: {step}...", file=sys.stderr, flush=True),
        )
    except KqvError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report.model_dump_json() if args.json else "\n".join(report.lines()))
    return 0 if report.errors == 0 and report.answers_stored == report.answers_expected else 1


if __name__ == "__main__":
    sys.exit(main())
