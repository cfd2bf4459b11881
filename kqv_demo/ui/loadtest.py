"""A class at once: N simulated students play one class round against one or more running servers.

`python -m kqv_demo class30` creates a class round through the library (classroom.create_class) and
starts its own servers (`--servers N`, default 1) on one database: `--database-url`, else (with more
than one server) $KQV_TEST_DATABASE_URL, else a temporary SQLite file. `--url` (repeatable) uses running
servers instead, which must be on this machine (loopback only). Students are split between the servers
in turn (no proxy: student n talks to server n mod N). Every student is a headless browser tab: it opens
the class link (?class=CODE), enters a unique name and answers every question with a random choice and
confidence, pressing the buttons a person would, then opens its results.

It lives in kqv_demo/ui/ because it speaks Streamlit's wire protocol (kqv_demo/ui/wire_client.py); the
command line runs it in a process of its own (`python -m kqv_demo.ui.loadtest`), so that the library
never imports Streamlit.

Think-time model: each student arrives at a uniform random moment in the first `think_max` seconds, and
waits uniform(`think_min`, `think_max`) seconds before each action (reading, choosing). `burst` removes
every wait: all students connect at once and act as fast as the server answers.

Measured: every interaction's latency, from sending the action to the end of the run that answers it
(including any st.rerun() the page does); errors (an exception on the page, a page that did not move on
as a person would expect, a run not finished within 60 s, a disconnect, the overall time limit); and
afterwards, in the database, that every answer a student saw accepted is stored, once. Then the
instructor's dashboard is opened on every server (Instructor page, code and key): each must show the
joined, finished and answer counts that the library reads from the database.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from pydantic import BaseModel

from kqv_demo.classroom import class_results, create_class
from kqv_demo.content.loader import Bank, load_bank
from kqv_demo.errors import KqvError, UserInputError
from kqv_demo.classroom.resolve import resolve_round
from kqv_demo.quiz.resolve import round_items
from kqv_demo.stats import percentile
from kqv_demo.storage import Store
from kqv_demo.stress.service import POSTGRES_VARIABLE
from kqv_demo.ui.app_server import own_servers
from kqv_demo.ui.wire_client import AppTab, Page, ProtocolError, Widget

MAX_STUDENTS = 300  # a class round admits 300 unless its instructor sets another cap (storage.DEFAULT_MAX_STUDENTS)
MAX_SERVERS = 4
MAX_SECONDS = 1800
QUIZ_PAGE = "quiz"
INSTRUCTOR_PAGE = "instructor"
NUMERIC_GUESS = "1"
DASHBOARD_FIGURES = ("Joined", "Finished", "Answers")


class DashboardView(BaseModel):
    """What one server's instructor dashboard showed for the class (None: it could not be read)."""

    server: str
    joined: int | None = None
    finished: int | None = None
    answers: int | None = None
    problem: str | None = None


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
    servers: int = 1
    database: str = "sqlite"  # the backend the servers shared
    server_p95_ms: list[float] = []  # per server, in the order of `dashboards`
    dashboards: list[DashboardView] = []
    library_view: DashboardView | None = None  # joined/finished/answers as the library reads them
    dashboards_agree: bool = True  # every server's dashboard shows the library's figures

    def lines(self) -> list[str]:
        think = "none (burst)" if self.burst else f"uniform {self.think_s[0]:g}-{self.think_s[1]:g} s"
        lines = [
            f"students            {self.students} ({self.finished_students} finished the round '{self.round}')",
            f"servers             {self.servers} on {self.database}",
            f"think time          {think}",
            f"interactions        {self.interactions} in {self.seconds:.0f} s",
            f"latency p50/p95/max {self.p50_ms:.0f} / {self.p95_ms:.0f} / {self.max_ms:.0f} ms",
            f"errors              {self.errors}",
            (f"answers stored      {self.answers_stored} of {self.answers_expected} expected"
             f" ({self.answers_duplicated} duplicated)"),
        ]
        if self.library_view is not None:
            lines.append(f"dashboards          {'agree' if self.dashboards_agree else 'DISAGREE'}: "
                         f"joined/finished/answers {_figures(self.library_view)} in the database; "
                         + ", ".join(f"{view.server} {_figures(view)}" for view in self.dashboards))
        return lines + [f"  {sample}" for sample in self.error_samples]


def _figures(view: DashboardView) -> str:
    return view.problem or f"{view.joined}/{view.finished}/{view.answers}"


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


def check_limits(students: int, seconds: float, think: tuple[float, float], servers: int = 1) -> None:
    if not 1 <= students <= MAX_STUDENTS:
        raise UserInputError(f"--students must be between 1 and {MAX_STUDENTS}, not {students}.")
    if not 1 <= servers <= MAX_SERVERS:
        raise UserInputError(f"--servers must be between 1 and {MAX_SERVERS}, not {servers}.")
    if not 10 <= seconds <= MAX_SECONDS:
        raise UserInputError(f"--timeout must be between 10 and {MAX_SECONDS} seconds, not {seconds:g}.")
    low, high = think
    if not 0 <= low <= high <= 60:
        raise UserInputError(f"Think time must be 0 <= min <= max <= 60 seconds, not {low:g}-{high:g}.")


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
    server: int = 0  # which server this student talks to
    acknowledged: list[str] = field(default_factory=list)  # item ids whose answer the page showed as accepted
    in_flight: str | None = None  # the item whose answer was sent and not yet acknowledged


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
    database: str = "sqlite"


@dataclass(frozen=True)
class ClassLink:
    """A new class round: the students' query string, its questions per student, its code and instructor key."""

    query_string: str
    questions: int
    code: str
    key: str


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

    student.in_flight = item_of_form(submit.form_id, _query_value(tab.query_string, "r"))
    page = await _step(student, tab.submit(submit, _choose(student, page, submit.form_id)),
                       "the answer to be accepted", accepted)
    student.answered += 1
    student.acknowledged.append(student.in_flight)
    student.in_flight = None
    return page


def item_of_form(form_id: str, round_key: str | None) -> str:
    """The item an answer form is for: the quiz page keys it "answer-ROUND-ITEM" (kqv_demo/ui/pages/quiz.py)."""
    prefix = f"answer-{round_key}-"
    if round_key is None or not form_id.startswith(prefix):
        raise Stuck(f"the answer form {form_id!r} does not name an item of round {round_key!r}")
    return form_id.removeprefix(prefix)


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
async def _run_class(students: list[Student], plans: list[Plan], seconds: float,
                     alongside: Callable[[], Coroutine[Any, Any, None]] | None = None) -> None:
    """Every student plays (on the server of its plan); `alongside` runs at the same time and is
    cancelled when the class is over."""
    companion = asyncio.create_task(alongside()) if alongside is not None else None
    tasks = [asyncio.create_task(play(student, plans[student.server])) for student in students]
    _done, pending = await asyncio.wait(tasks, timeout=seconds)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for student, task in zip(students, tasks):
        if task in pending:
            student.errors.append(f"student {student.number}: not finished within the {seconds:.0f} s limit")
    if companion is not None:
        companion.cancel()
        await asyncio.gather(companion, return_exceptions=True)


async def _warm_up(plan: Plan) -> None:
    """The quiz page once, as the instructor would before the class: the server's first run imports the
    pages and loads the bank. Then the Ask page, whose run ends only once the models are loaded: the
    quiz page starts loading them in the background, which must not be measured against the class."""
    for page_name, query_string in ((QUIZ_PAGE, plan.query_string), ("ask", "")):
        tab = AppTab(plan.ws_url, page_name, query_string, run_timeout=300)
        try:
            page, _seconds = await tab.open()
        except ProtocolError as failure:
            raise KqvError(f"The app server did not serve the {page_name} page: {failure}") from None
        finally:
            await tab.close()
        if page.problems:
            raise KqvError(f"The {page_name} page shows a problem before any student joined: "
                           f"{'; '.join(page.problems)}")


def stored_answers(store: Store, students: list[Student]) -> tuple[int, int, int]:
    """(answers stored, answers stored more than once, acknowledged answers missing) for the students' rounds.

    A student whose stored answers differ from the answers the server confirmed gets an error.
    """
    stored = duplicated = lost = 0
    for student in students:
        found = store.round(student.round_key) if student.round_key else None
        item_ids = [answer.item_id for answer in store.answers(found.id)] if found else []
        stored += len(set(item_ids))
        duplicated += len(item_ids) - len(set(item_ids))
        missing = [item for item in student.acknowledged if item not in item_ids]
        lost += len(missing)
        if missing or len(set(item_ids)) != student.answered:
            student.errors.append(f"student {student.number}: {student.answered} answers confirmed on the page, "
                                  f"{len(set(item_ids))} in the database"
                                  + (f", missing {', '.join(missing[:3])}" if missing else ""))
    return stored, duplicated, lost


async def read_dashboard(ws_url: str, code: str, key: str, run_timeout: float = 120) -> DashboardView:
    """The instructor's Class results on one server: the code and key typed in, the three counts read."""
    server = ws_url.removeprefix("ws://").split("/")[0]
    tab = AppTab(ws_url, INSTRUCTOR_PAGE, "", run_timeout)
    try:
        page, _seconds = await tab.open()
        code_box, key_box = page.find("text_input", "Round code"), page.find("text_input", "Instructor key")
        if code_box is None or key_box is None:
            return DashboardView(server=server, problem=f"no results form; the page shows: {_shown(page)}")
        page, _seconds = await tab.submit(_submitter(page, code_box.form_id), {code_box: code, key_box: key})
    except (ProtocolError, Stuck) as failure:
        return DashboardView(server=server, problem=str(failure))
    finally:
        await tab.close()
    try:
        joined, finished, answers = (int(page.metrics[label]) for label in DASHBOARD_FIGURES)
    except (KeyError, ValueError):
        return DashboardView(server=server, problem=f"no dashboard figures; the page shows: {_shown(page)}")
    return DashboardView(server=server, joined=joined, finished=finished, answers=answers)


def library_view(store: Store, bank: Bank, code: str) -> DashboardView:
    results = class_results(store, bank, code)
    return DashboardView(server="database", joined=results.joined, finished=results.finished,
                         answers=results.answers)


def check_dashboards(views: list[DashboardView], truth: DashboardView) -> list[str]:
    """One error per server whose dashboard does not show the database's figures."""
    return [f"the dashboard on {view.server} shows joined/finished/answers {_figures(view)}, the database "
            f"{_figures(truth)}" for view in views if _figures(view) != _figures(truth)]


def run_class(students: int = 30, url: str | list[str] | None = None, round_name: str = "core-10",
              think: tuple[float, float] = (1.0, 4.0), burst: bool = False, seconds: float = 300,
              database_url: str | None = None, feedback: str | None = None, seed: int = 0, servers: int = 1,
              progress: Callable[[str], None] = lambda step: None) -> ClassReport:
    """Drive `students` simulated students through a new class round of `round_name`.

    Starts `servers` own servers on one database (`shared_database(database_url, servers)`) unless `url`
    names running ones (one URL or a list); then the class is created in `database_url` (default:
    $DATABASE_URL), which must be the database those servers use. `feedback` ("immediate" or "end")
    overrides the round's own feedback setting.
    """
    urls = [url] if isinstance(url, str) else list(url or [])
    check_limits(students, seconds, think, len(urls) or servers)
    urls = [loopback_url(one) for one in urls]
    with tempfile.TemporaryDirectory(prefix="kqv-class-") as scratch:
        database = database_url if urls else shared_database(database_url, servers, Path(scratch))
        store = Store(database)
        run = Run(round_name, feedback, students, think, burst, seconds, seed, progress,
                  store.engine.dialect.name)
        try:
            bank = load_bank(dialogue=False)
            link = new_class(store, bank, round_name, feedback)
            if urls:
                return measure_class(urls, store, bank, link, run)
            progress(f"starting {servers} own server(s) on {run.database}")
            with own_servers(database, servers, Path(scratch)) as started:
                return measure_class([server.url for server in started], store, bank, link, run)
        finally:
            store.engine.dispose()


def shared_database(database_url: str | None, servers: int, scratch: Path) -> str:
    """The database of own servers: the one given; with several servers $KQV_TEST_DATABASE_URL if set
    (what `.ci/pg` starts); otherwise a temporary SQLite file (which several processes can share too)."""
    if database_url:
        return database_url
    if servers > 1 and os.environ.get(POSTGRES_VARIABLE):
        return os.environ[POSTGRES_VARIABLE]
    return f"sqlite:///{scratch / 'class.sqlite3'}"


def new_class(store: Store, bank: Bank, round_name: str, feedback: str | None) -> ClassLink:
    """A new class round of `round_name`, students admitted and started at once."""
    spec = resolve_round(bank, round_name, store)
    if feedback is not None:
        spec = spec.model_copy(update={"feedback": feedback})
    code, key = create_class(store, bank, spec, max_students=MAX_STUDENTS)
    return ClassLink(urlencode({"class": code}), len(round_items(bank, spec)), code, key)


def measure_class(urls: list[str], store: Store, bank: Bank, link: ClassLink, run: Run,
                  alongside: Callable[[], Coroutine[Any, Any, None]] | None = None) -> ClassReport:
    """The class on these servers (students split in turn), its answers in the database, and every
    server's dashboard. `alongside` runs during the class (e.g. a hostile visitor)."""
    plans = [Plan("ws" + url.removeprefix("http") + "/_stcore/stream", link.query_string, run.think, run.burst,
                  run_timeout=min(60.0, run.seconds)) for url in urls]
    tag = f"{time.time_ns() % 10**8:08d}"
    students = [Student(n, f"Load test {tag} student {n:03d}", random.Random(run.seed * 1000 + n),
                        server=(n - 1) % len(urls)) for n in range(1, run.students + 1)]
    run.progress(f"opening the quiz page once on each of {len(urls)} server(s) (the first run loads the bank)")
    for plan in plans:
        asyncio.run(_warm_up(plan))
    run.progress(f"{run.students} students playing {run.round_name} ({link.questions} questions each)")
    started = time.perf_counter()
    asyncio.run(_run_class(students, plans, run.seconds, alongside))
    elapsed = time.perf_counter() - started
    run.progress("checking the answers in the database and the dashboard on every server")
    stored, duplicated, _lost = stored_answers(store, students)  # before counting errors: it may add some
    truth = library_view(store, bank, link.code)
    views = [asyncio.run(read_dashboard(plan.ws_url, link.code, link.key)) for plan in plans]
    dashboard_errors = check_dashboards(views, truth)
    latencies = [ms for student in students for ms in student.latencies_ms]
    errors = [error for student in students for error in student.errors] + dashboard_errors
    return ClassReport(
        students=run.students, round=run.round_name, burst=run.burst, think_s=run.think,
        interactions=len(latencies), p50_ms=round(percentile(latencies, 0.50), 1),
        p95_ms=round(percentile(latencies, 0.95), 1), max_ms=round(max(latencies, default=0.0), 1),
        errors=len(errors), error_samples=errors[:10], answers_expected=link.questions * run.students,
        answers_stored=stored, answers_duplicated=duplicated,
        finished_students=sum(s.finished and not s.errors for s in students), seconds=round(elapsed, 1),
        servers=len(urls), database=run.database,
        server_p95_ms=[round(percentile([ms for s in students if s.server == number for ms in s.latencies_ms],
                                        0.95), 1) for number in range(len(urls))],
        dashboards=views, library_view=truth, dashboards_agree=not dashboard_errors,
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
    class30.add_argument("--students", type=int, default=30, help=f"how many (1-{MAX_STUDENTS}, default 30)")
    class30.add_argument("--servers", type=int, default=1,
                         help=f"own app servers on one database, students split between them (1-{MAX_SERVERS})")
    class30.add_argument("--url", action="append",
                         help="a running server on this machine (repeat for several; default: start own ones)")
    class30.add_argument("--round", default="core-10", metavar="NAME",
                         help="built-in round id, round file or class code to make the class round from")
    class30.add_argument("--think", type=_think_range, default=(1.0, 4.0), metavar="MIN-MAX",
                         help="seconds a student waits before each action, uniform (default 1-4)")
    class30.add_argument("--burst", action="store_true", help="no think time: every student acts at once")
    class30.add_argument("--feedback", choices=["immediate", "end"], help="override the round's feedback mode")
    class30.add_argument("--timeout", type=float, default=300, help="limit for the whole class, seconds (10-1800)")
    class30.add_argument("--database-url",
                         help="the servers' database: with --url the one they use (default: $DATABASE_URL); "
                              f"for own servers the one to start them on (default: ${POSTGRES_VARIABLE} "
                              "with --servers 2 or more, else a temporary SQLite file)")
    class30.add_argument("--seed", type=int, default=0, help="seed for the students' choices and think times")
    class30.add_argument("--json", action="store_true", help="print one JSON object")
    return class30


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        report = run_class(
            students=args.students, url=args.url, round_name=args.round, think=args.think, burst=args.burst,
            seconds=args.timeout, database_url=args.database_url, feedback=args.feedback, seed=args.seed,
            servers=args.servers, progress=lambda step: print(f"class30: {step}...", file=sys.stderr, flush=True),
        )
    except KqvError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report.model_dump_json() if args.json else "\n".join(report.lines()))
    return 0 if report.errors == 0 and report.answers_stored == report.answers_expected else 1


if __name__ == "__main__":
    sys.exit(main())
