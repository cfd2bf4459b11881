"""kill -9 of the app server mid-round, again and again: no acknowledged answer lost, every round resumes.

    python -m kqv_demo.ui.crash_drill --kills 20 --json                      # SQLite, a temporary file
    python -m kqv_demo.ui.crash_drill --kills 20 --database-url postgresql+psycopg://...

The drill creates a long class round (DRILL_KINDS, no model work) in the database, starts the app
(`streamlit run app.py`) on a loopback port, and lets `students` simulated students (the websocket
clients of the class load test) join and answer with a short think time. Then, `kills` times: after a
random stretch of play it waits for a moment when some answer is on its way (sent, not yet shown as
accepted), sends the server SIGKILL, starts it again on the same port and database, and every student
reopens its own link (`?learner=KEY&r=ROUND`, as a browser reloading the page would).

Checked, for every student and every kill:
- resume: the reopened link shows the same profile ("Playing as NAME"), no name form, and the round
  where it stopped: "N of M answered" with N the answers the page had accepted, or one more when the
  answer on its way was stored before the kill (committed, not yet shown: not a loss), and the question
  shown is the round's first unanswered item in the database;
- no loss: at the end every answer a page showed as accepted is in the database, each stored once.

It lives in kqv_demo/ui/ because it speaks Streamlit's wire protocol; the library runs it in a process of
its own (kqv_demo/stress/crash.py).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from kqv_demo.classroom import create_class
from kqv_demo.content.loader import load_bank
from kqv_demo.errors import KqvError, UserInputError
from kqv_demo.quiz.rounds import RoundSpec
from kqv_demo.stats import percentile
from kqv_demo.storage import Store
from kqv_demo.ui.app_server import AppServer, own_servers
from kqv_demo.ui.loadtest import (
    QUIZ_PAGE, Stuck, Student, _answer_button, _next_step, _query_value, _shown, item_of_form, stored_answers,
)
from kqv_demo.ui.wire_client import AppTab, Page, ProtocolError

DRILL_KINDS = ("verdict", "multiple_choice", "numeric", "spot_the_error")  # no model work: answers are DB writes
MAX_KILLS = 200
RUN_TIMEOUT_S = 120  # the first run after a restart imports the pages and loads the bank
RESUME_TIMEOUT_S = 240  # every student back on its round after a restart
IN_FLIGHT_WAIT_S = 3.0  # after the random stretch, how long to wait for an answer on its way before killing anyway
PROGRESS = re.compile(r"(\d+) of (\d+) answered")


class CrashReport(BaseModel):
    kills: int
    database: str
    students: int
    questions: int
    answers_acknowledged: int  # shown as accepted to a student
    answers_stored: int
    answers_lost: int  # acknowledged but not in the database
    answers_duplicated: int
    kills_with_answer_in_flight: int  # kills that came while some answer was sent and not yet acknowledged
    in_flight_at_kill: int  # answers on their way at a kill
    in_flight_stored: int  # of those, stored before the kill (the page never said so: not a loss either way)
    resumes: int  # a student reopened its link after a kill and was back where it stopped
    resume_failures: int
    errors: int
    error_samples: list[str]
    restart_s_p50: float  # SIGKILL to the restarted server answering its health check
    restart_s_max: float
    resume_s_p50: float  # then until every student is back on its round (their first page run after a start)
    resume_s_max: float
    seconds: float

    def lines(self) -> list[str]:
        return [
            f"kills               {self.kills} (SIGKILL mid-round, {self.kills_with_answer_in_flight} with an "
            f"answer on its way), {self.database}",
            f"students            {self.students}, {self.questions} questions each",
            f"answers             {self.answers_acknowledged} acknowledged, {self.answers_stored} stored, "
            f"{self.answers_lost} lost, {self.answers_duplicated} duplicated",
            f"on their way        {self.in_flight_at_kill} at a kill, {self.in_flight_stored} of them stored",
            f"resumed             {self.resumes} ({self.resume_failures} failed)",
            f"restart             p50 {self.restart_s_p50:.1f} s, max {self.restart_s_max:.1f} s; every student "
            f"back p50 {self.resume_s_p50:.1f} s, max {self.resume_s_max:.1f} s later",
            f"errors              {self.errors}",
            *(f"  {sample}" for sample in self.error_samples),
        ]


@dataclass
class DrillStudent(Student):
    resumed_generation: int = 0  # the last server generation this student resumed on
    resumes: int = 0
    resume_failures: int = 0
    in_flight_at_kill: int = 0
    stored_unacknowledged: list[str] = field(default_factory=list)  # on its way at a kill, found stored
    done: bool = False  # finished the round or gave up: the drill no longer waits for it


@dataclass
class Drill:
    """What the students and the killer share: the server, its generation (one more per kill) and its state."""

    server: AppServer
    store: Store
    think: tuple[float, float]
    up: asyncio.Event = field(default_factory=asyncio.Event)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    progress: Callable[[str], None] = lambda step: None
    generation: int = 0
    restart_seconds: list[float] = field(default_factory=list)
    resume_seconds: list[float] = field(default_factory=list)  # restart to every student back on its round
    errors: list[str] = field(default_factory=list)


# --- one student -------------------------------------------------------------------------------
async def drill_play(student: DrillStudent, drill: Drill, query_string: str) -> None:
    tab = AppTab(drill.server.ws_url, QUIZ_PAGE, query_string, RUN_TIMEOUT_S)
    try:
        while not drill.stop.is_set():
            await drill.up.wait()
            generation = drill.generation
            try:
                await _play_until_killed(student, drill, tab, generation)
                return  # finished the round, stopped, or stuck
            except ProtocolError as failure:
                if drill.generation == generation:  # the server is alive: a real failure
                    student.errors.append(f"student {student.number}: {failure}")
                    return
                if student.in_flight is not None:
                    student.in_flight_at_kill += 1
            finally:
                await tab.close()
    finally:
        student.done = True


async def _play_until_killed(student: DrillStudent, drill: Drill, tab: AppTab, generation: int) -> None:
    page, _seconds = await tab.open()
    if generation > 0 and student.round_key is not None:
        await _check_resume(student, drill, page)
        student.resumed_generation = generation
    try:
        while not drill.stop.is_set() and (step := _next_step(student, tab, page)) is not None:
            await asyncio.sleep(student.rng.uniform(*drill.think))
            page = await step()
            student.round_key = _query_value(tab.query_string, "r") or student.round_key
    except Stuck as failure:
        student.errors.append(f"student {student.number} after {student.answered} answers: {failure}")
        return
    student.finished = not drill.stop.is_set()
    if student.finished:
        student.done = True
        await drill.stop.wait()  # keep the tab open until the drill ends, as a person reading results would


async def _check_resume(student: DrillStudent, drill: Drill, page: Page) -> None:
    """The reopened link shows this student's round where it stopped (see the module's docstring)."""
    problem = await asyncio.to_thread(_resume_problem, student, drill.store, page)
    if problem is None:
        student.resumes += 1
    else:
        student.resume_failures += 1
        student.errors.append(f"student {student.number} after kill {drill.generation}: {problem}")
    student.in_flight = None


def _resume_problem(student: DrillStudent, store: Store, page: Page) -> str | None:
    if page.problems or page.find("text_input", "Your name") is not None:
        return f"the link did not reopen the round; the page shows: {_shown(page)}"
    if not any("Playing as" in text and student.name in text for text in page.texts):
        return f"the round does not show the profile {student.name!r}; the page shows: {_shown(page)}"
    stored = store.round(student.round_key)
    stored_items = [answer.item_id for answer in store.answers(stored.id)]
    if student.in_flight is not None and student.in_flight in stored_items:
        student.stored_unacknowledged.append(student.in_flight)  # committed before the kill
        student.answered += 1
    expected = len(student.acknowledged) + len(student.stored_unacknowledged)
    shown = next((match for text in page.texts if (match := PROGRESS.search(text))), None)
    if shown is None or int(shown.group(1)) != expected or len(set(stored_items)) != expected:
        return (f"{expected} answers accepted or stored before the kill, the database has {len(set(stored_items))}, "
                f"the page shows {shown.group(0) if shown else 'no progress'}")
    unanswered = [item for item in stored.item_ids if item not in stored_items]
    button = _answer_button(page)
    if unanswered and (button is None or item_of_form(button.form_id, student.round_key) != unanswered[0]):
        return f"the page does not show the first unanswered question {unanswered[0]!r}: {_shown(page)}"
    return None


# --- the killer ----------------------------------------------------------------------------------
async def _kill_and_restart(drill: Drill, students: list[DrillStudent], rng: random.Random,
                            play: tuple[float, float]) -> bool:
    """One kill: a random stretch of play, then SIGKILL at a moment an answer is on its way (or after
    IN_FLIGHT_WAIT_S without one), then a restart. True when some answer was on its way."""
    await asyncio.sleep(rng.uniform(*play))
    deadline = time.monotonic() + IN_FLIGHT_WAIT_S
    while not any(s.in_flight for s in students) and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    in_flight = any(s.in_flight for s in students)
    drill.up.clear()
    drill.generation += 1
    drill.server.kill()
    drill.server.start()
    drill.restart_seconds.append(await asyncio.to_thread(drill.server.wait_healthy))
    drill.up.set()
    return in_flight


async def _all_resumed(drill: Drill, students: list[DrillStudent]) -> None:
    """Until every student still playing is back on its round on the current server."""
    deadline = time.monotonic() + RESUME_TIMEOUT_S
    while any(not s.done and s.resumed_generation < drill.generation for s in students):
        if time.monotonic() > deadline:
            drill.errors.append(f"students not back on their rounds {RESUME_TIMEOUT_S} s after restart "
                                f"{drill.generation}")
            return
        await asyncio.sleep(0.05)


async def _all_joined(drill: Drill, students: list[DrillStudent]) -> None:
    """Until every student has joined and had an answer accepted: the kills come mid-round."""
    deadline = time.monotonic() + RESUME_TIMEOUT_S
    while any(not s.done and not s.acknowledged for s in students):
        if time.monotonic() > deadline:
            drill.errors.append(f"students did not start answering within {RESUME_TIMEOUT_S} s")
            return
        await asyncio.sleep(0.05)


async def _drill(drill: Drill, students: list[DrillStudent], query_string: str, kills: int,
                 play: tuple[float, float], seed: int) -> int:
    rng = random.Random(seed)
    tasks = [asyncio.create_task(drill_play(student, drill, query_string)) for student in students]
    drill.up.set()
    in_flight_kills = 0
    try:
        started = time.monotonic()
        await _all_joined(drill, students)
        drill.progress(f"every student answering after {time.monotonic() - started:.0f} s")
        for kill in range(1, kills + 1):
            if all(s.done for s in students):
                drill.errors.append(f"every student finished or stopped after {drill.generation} kills")
                break
            in_flight_kills += await _kill_and_restart(drill, students, rng, play)
            restarted = time.monotonic()
            await _all_resumed(drill, students)
            drill.resume_seconds.append(time.monotonic() - restarted)
            drill.progress(f"kill {kill}/{kills}: up again in {drill.restart_seconds[-1]:.1f} s, every student "
                           f"back on its round {drill.resume_seconds[-1]:.1f} s later")
        await asyncio.sleep(rng.uniform(*play))  # and they go on answering after the last restart
    finally:
        drill.stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    return in_flight_kills


# --- the whole drill -----------------------------------------------------------------------------
def run_drill(kills: int = 20, students: int = 6, database_url: str | None = None, seed: int = 0,
              think: tuple[float, float] = (0.1, 0.6), play: tuple[float, float] = (0.5, 3.0),
              env: dict[str, str] | None = None, progress=lambda step: None) -> CrashReport:
    """The drill against a new class round in `database_url` (default: a temporary SQLite file).
    `env`: extra environment for the server (the tests plant bugs with it)."""
    if not 1 <= kills <= MAX_KILLS:
        raise UserInputError(f"--kills must be between 1 and {MAX_KILLS}, not {kills}.")
    if not 1 <= students <= 50:
        raise UserInputError(f"--students must be between 1 and 50, not {students}.")
    with tempfile.TemporaryDirectory(prefix="kqv-crash-") as scratch:
        store = Store(database_url or f"sqlite:///{scratch}/crash.sqlite3")
        try:
            bank = load_bank(dialogue=False)
            questions = min(150, 30 + 6 * kills)
            spec = RoundSpec(id="crash-drill", title="Crash drill", count=questions, kinds=DRILL_KINDS, seed=seed)
            code, _key = create_class(store, bank, spec)
            progress(f"starting the server ({store.engine.dialect.name})")
            url = store.engine.url.render_as_string(hide_password=False)
            with own_servers(url, 1, Path(scratch), env=env) as (server,):
                return _run(server, store, code, kills, students, seed, think, play, progress)
        finally:
            store.engine.dispose()


def _run(server: AppServer, store: Store, code: str, kills: int, count: int, seed: int,
         think: tuple[float, float], play: tuple[float, float], progress) -> CrashReport:
    tag = f"{time.time_ns() % 10**8:08d}"
    students = [DrillStudent(n, f"Crash drill {tag} student {n:02d}", random.Random(seed * 1000 + n))
                for n in range(1, count + 1)]
    drill = Drill(server, store, think, progress=progress)
    progress(f"{count} students answering; {kills} kills")
    started = time.perf_counter()
    in_flight_kills = asyncio.run(_drill(drill, students, f"class={code}", kills, play, seed))
    elapsed = time.perf_counter() - started
    progress("checking every acknowledged answer in the database")
    stored, duplicated, lost = stored_answers(store, students)  # before gathering the errors: it may add some
    errors = drill.errors + [error for student in students for error in student.errors]
    restarts, resumed = drill.restart_seconds or [0.0], drill.resume_seconds or [0.0]
    return CrashReport(
        kills=drill.generation, database=store.engine.dialect.name, students=count,
        questions=len(store.round(students[0].round_key).item_ids) if students[0].round_key else 0,
        answers_acknowledged=sum(len(s.acknowledged) for s in students), answers_stored=stored, answers_lost=lost,
        answers_duplicated=duplicated, kills_with_answer_in_flight=in_flight_kills,
        in_flight_at_kill=sum(s.in_flight_at_kill for s in students),
        in_flight_stored=sum(len(s.stored_unacknowledged) for s in students),
        resumes=sum(s.resumes for s in students), resume_failures=sum(s.resume_failures for s in students),
        errors=len(errors), error_samples=errors[:10], restart_s_p50=round(percentile(restarts, 0.5), 1),
        restart_s_max=round(max(restarts), 1), resume_s_p50=round(percentile(resumed, 0.5), 1),
        resume_s_max=round(max(resumed), 1), seconds=round(elapsed, 1),
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kqv_demo.ui.crash_drill",
                                     description="kill -9 the app server mid-round; check nothing is lost.")
    parser.add_argument("--kills", type=int, default=20, help=f"how many times (1-{MAX_KILLS}, default 20)")
    parser.add_argument("--students", type=int, default=6, help="students answering meanwhile (default 6)")
    parser.add_argument("--database-url", help="the database (default: a temporary SQLite file)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        report = run_drill(kills=args.kills, students=args.students, database_url=args.database_url, seed=args.seed,
                           progress=lambda step: print(f"crash drill: {step}...", file=sys.stderr, flush=True))
    except KqvError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report.model_dump_json() if args.json else "\n".join(report.lines()))
    return 0 if report.errors == 0 and report.answers_lost == 0 and report.resume_failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
