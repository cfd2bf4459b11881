"""A class while one visitor sends hostile chat messages and uploads: the students' p95 against a quiet run.

    python -m kqv_demo.ui.hostile_visitor --students 30 --json

One own server (a temporary SQLite database) serves two class rounds of the class load test
(kqv_demo/ui/loadtest.py), one after the other, with the same number of students, think time and
seed: first a quiet one, then one during which a single visitor, with the same websocket client,

- on the Ask page sends chat messages of 1,000 characters (short sentences mixed with Markdown links,
  images, HTML, LaTeX and directives) back to back; when the per-session rate limit refuses one, it
  opens the page again (a new session, as a script reloading the page would) and goes on;
- on the Instructor page uploads hostile round files back to back (New round, "An uploaded file"):
  an alias bomb, nesting thousands deep, a 5,000-digit integer, 64 KB of unknown claim ids, a file
  over the 64 KB limit and one over the server's 1 MB upload limit, each made a little different
  every time so that no cache answers it.

Reported: both runs' class figures, `p95_ratio` = the students' p95 during the attack / their p95
in the quiet run (the two are measured minutes apart on the same server, so the ratio is the
comparable figure on a shared machine), and what the visitor got: messages answered or refused by the
rate limit, uploads refused with a message or by the server's size limit, any exception shown to it
and any link or image its pages would render (counted as kqv_demo/stress/hostile_text.py counts them;
the bank's own references are links on purpose).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from kqv_demo.content.loader import load_bank
from kqv_demo.errors import KqvError
from kqv_demo.ratelimit import CHAT
from kqv_demo.settings import PROJECT_ROOT
from kqv_demo.stats import percentile
from kqv_demo.storage import Store
from kqv_demo.stress.hostile_text import PIECES, links_rendered, vetted_addresses
from kqv_demo.stress.service import MAX_P95_RATIO
from kqv_demo.stress.yaml_fuzz import alias_bomb
from kqv_demo.ui.app_server import own_servers
from kqv_demo.ui.loadtest import ClassReport, Run, _shown, check_limits, measure_class, new_class
from kqv_demo.ui.wire_client import AppTab, Page, ProtocolError, Widget

MESSAGE_CHARS = 1000
RATE_LIMITED = CHAT.template.partition("{wait}")[0]  # how the Ask page's warning begins
ATTACKER_HOSTS = ("://evil.example", "://tracker.example")  # where MARKUP_PIECES link to
MARKUP_PIECES = ("markdown link", "markdown image", "autolink", "reference link", "html", "markdown marks",
                 "latex and directives")  # of hostile_text.PIECES: the ones that are markup
MARKUP_SHARE = 0.14  # of the parts: pieces of ~60 characters, so about a third of the characters are markup
UPLOAD_SOURCE = "An uploaded file"
ATTACKS = ("chat", "upload")
SERVER_UPLOAD_LIMIT = 1024 * 1024  # .streamlit/config.toml server.maxUploadSize
RUN_TIMEOUT_S = 120


def hostile_message(rng: random.Random, chars: int = MESSAGE_CHARS) -> str:
    """`chars` characters of short sentences (each one a sentence the explainer embeds) and markup."""
    parts: list[str] = []
    while len(" ".join(parts)) < chars:
        if rng.random() < MARKUP_SHARE:
            parts.append(PIECES[rng.choice(MARKUP_PIECES)](rng))
        else:
            parts.append(rng.choice(("Keys {} are stored.", "Attention is KL {}.", "Values are text {}.",
                                     "Why {}?", "No {}.")).format(rng.randrange(10_000)))
    return " ".join(parts)[:chars]


def hostile_uploads(rng: random.Random, number: int) -> tuple[str, bytes]:
    """The `number`th hostile round file (name, bytes), in turn of kind, each a little different."""
    base = (PROJECT_ROOT / "content" / "rounds" / "workshop-45.yaml").read_bytes()
    salt = f"# {number} {rng.randrange(10**9)}\n".encode()  # new bytes every time: no parse cache answers it
    unknown_ids = b"claims: [" + b", ".join(b"no-such-claim-%d" % n for n in range(6000)) + b"]\n"
    kinds = [
        ("alias-bomb.yaml", alias_bomb(salt, rng)),
        ("deep.yaml", salt + b"id: deep\ntitle: " + b"[" * 5000 + b"]" * 5000 + b"\n"),
        ("huge-int.yaml", salt + base.replace(b"count: 20", b"count: " + b"9" * 5000)),
        ("unknown-ids.yaml", (salt + base + unknown_ids)[:64 * 1024 - 2] + b"]\n"),
        ("too-long.yaml", salt + base + b"# " + b"x" * (100 * 1024) + b"\n"),
        ("over-1mb.yaml", salt + base + b"# " + b"y" * (2 * 1024 * 1024) + b"\n"),
        ("control.yaml",
         salt + base.replace(b"title:", "title: \x00\x1b[31m\u202e".encode()) + b"\xff\xfe\xed\xa0\x80"),
    ]
    return kinds[number % len(kinds)]


class VisitorReport(BaseModel):
    chat_messages: int = 0
    chat_answered: int = 0
    chat_rate_limited: int = 0
    chat_sessions: int = 0  # Ask pages opened (a new one after each refusal)
    chat_p95_ms: float = 0.0
    chat_max_ms: float = 0.0
    uploads: int = 0
    uploads_refused_with_message: int = 0  # the page listed the problems and created nothing
    uploads_refused_by_size: int = 0  # the server's 1 MB limit refused the upload itself (HTTP 413)
    uploads_accepted: int = 0  # a hostile file the page offered to create a round from: must stay 0
    upload_p95_ms: float = 0.0
    upload_max_ms: float = 0.0
    exceptions: int = 0  # an exception shown on the visitor's page, or a run that never finished
    links_rendered: int = 0  # page texts that would render a link or image (not a bank reference)
    error_samples: list[str] = []


class HostileClassReport(BaseModel):
    students: int
    round: str
    think_s: tuple[float, float]
    quiet: ClassReport
    hostile: ClassReport
    p95_ratio: float  # students' p95 during the attack / in the quiet run
    p50_ratio: float
    visitor: VisitorReport
    errors: int  # the students' errors in both runs, the visitor's exceptions and rendered links

    def lines(self) -> list[str]:
        v = self.visitor
        return [
            f"students            {self.students} ({self.round}), think {self.think_s[0]:g}-{self.think_s[1]:g} s",
            f"quiet     p50/p95   {self.quiet.p50_ms:.0f} / {self.quiet.p95_ms:.0f} ms, {self.quiet.errors} errors, "
            f"{self.quiet.answers_stored} of {self.quiet.answers_expected} answers stored",
            f"attacked  p50/p95   {self.hostile.p50_ms:.0f} / {self.hostile.p95_ms:.0f} ms, "
            f"{self.hostile.errors} errors, "
            f"{self.hostile.answers_stored} of {self.hostile.answers_expected} answers stored",
            f"p95 ratio           {self.p95_ratio:.2f} (p50 ratio {self.p50_ratio:.2f})",
            f"visitor chat        {v.chat_messages} messages of {MESSAGE_CHARS} characters: "
            f"{v.chat_answered} answered, "
            f"{v.chat_rate_limited} refused by the rate limit ({v.chat_sessions} sessions); p95 {v.chat_p95_ms:.0f} ms",
            f"visitor uploads     {v.uploads}: {v.uploads_refused_with_message} refused with a message, "
            f"{v.uploads_refused_by_size} by the 1 MB limit, {v.uploads_accepted} accepted; "
            f"p95 {v.upload_p95_ms:.0f} ms",
            f"visitor saw         {v.exceptions} exceptions, {v.links_rendered} unescaped links",
            *(f"  {sample}" for sample in [*self.quiet.error_samples, *self.hostile.error_samples, *v.error_samples]),
        ]


@dataclass
class Visitor:
    """One hostile visitor with two tabs: Ask and Instructor. `attack()` runs until cancelled."""

    ws_url: str
    rng: random.Random
    attacks: tuple[str, ...] = ATTACKS
    vetted: frozenset[str] = frozenset()  # the bank's own reference addresses: links on purpose
    chat_ms: list[float] = field(default_factory=list)
    upload_ms: list[float] = field(default_factory=list)
    report: VisitorReport = field(default_factory=VisitorReport)

    async def attack(self) -> None:
        loops = {"chat": self._chat, "upload": self._upload}
        await asyncio.gather(*(self._keep_going(loops[name], name) for name in self.attacks))

    async def _keep_going(self, attack, name: str) -> None:
        """A failure (a run that never finished, a page without its widget) is counted, then the attack
        starts again on a new page, until the class is over."""
        while True:
            try:
                await attack()
            except (ProtocolError, KqvError) as failure:
                self._problem(f"{name}: {failure}")
                await asyncio.sleep(1)

    async def _chat(self) -> None:
        tab = AppTab(self.ws_url, "ask", "", RUN_TIMEOUT_S)
        try:
            while True:
                page, _seconds = await tab.open()  # again after each refusal: a new session, a full bucket
                self.report.chat_sessions += 1
                while (chat_input := next((w for w in page.widgets if w.kind == "chat_input"), None)) is not None:
                    page, seconds = await tab.chat(chat_input, hostile_message(self.rng))
                    self.report.chat_messages += 1
                    self.chat_ms.append(seconds * 1000)
                    self._inspect(page, "chat")
                    if any(RATE_LIMITED in alert for alert in page.alerts):
                        self.report.chat_rate_limited += 1
                        break
                    self.report.chat_answered += 1
                else:
                    raise KqvError(f"the Ask page has no chat input: {_shown(page)}")
        finally:
            await tab.close()

    async def _upload(self) -> None:
        tab = AppTab(self.ws_url, "instructor", "", RUN_TIMEOUT_S)
        try:
            page, _seconds = await tab.open()
            source = page.find("radio", "Build the round from")
            if source is None or UPLOAD_SOURCE not in source.options:
                raise KqvError(f"the Instructor page has no upload choice: {_shown(page)}")
            page, _seconds = await tab.choose(source, UPLOAD_SOURCE)
            while (uploader := next((w for w in page.widgets if w.kind == "file_uploader"), None)) is not None:
                page = await self._upload_one(tab, uploader, page)
            raise KqvError(f"the Instructor page shows no uploader: {_shown(page)}")
        finally:
            await tab.close()

    async def _upload_one(self, tab: AppTab, uploader: Widget, page: Page) -> Page:
        name, data = hostile_uploads(self.rng, self.report.uploads)
        self.report.uploads += 1
        started = time.perf_counter()
        try:
            page, _seconds = await tab.upload(uploader, name, data)
        except ProtocolError as failure:
            # Over the limit the server answers 413, and may close the connection before the whole
            # file is sent (a broken pipe on this side): both are the limit at work.
            if "HTTP 413" not in str(failure) and len(data) <= SERVER_UPLOAD_LIMIT:
                raise
            self.report.uploads_refused_by_size += 1
            return page  # the page did not change: the server refused the file before any run
        finally:
            self.upload_ms.append((time.perf_counter() - started) * 1000)
        self._inspect(page, f"upload {name}")
        if page.button("Create the class round") is not None:
            self.report.uploads_accepted += 1
            self._problem(f"upload {name}: accepted")
        elif any("nothing was created" in alert for alert in page.alerts):
            self.report.uploads_refused_with_message += 1
        else:
            self._problem(f"upload {name}: neither refused nor accepted: {_shown(page)}")
        return page

    def _inspect(self, page: Page, where: str) -> None:
        for problem in page.problems:
            self._problem(f"{where}: {problem}")
        unescaped = [text for text in page.texts if links_rendered(text, self.vetted)]
        if unescaped:
            self.report.links_rendered += len(unescaped)
            self.report.error_samples.append(f"{where}: unescaped link in {unescaped[0][:120]!r}")

    def _problem(self, text: str) -> None:
        self.report.exceptions += 1
        if len(self.report.error_samples) < 10:
            self.report.error_samples.append(text[:300])

    def finished(self) -> VisitorReport:
        for name, values in (("chat", self.chat_ms), ("upload", self.upload_ms)):
            setattr(self.report, f"{name}_p95_ms", round(percentile(values, 0.95), 1))
            setattr(self.report, f"{name}_max_ms", round(max(values, default=0.0), 1))
        return self.report


async def _warm_up_visitor_pages(ws_url: str) -> None:
    """The Ask and Instructor pages once each, a normal message included, before the quiet run: the
    one-time work (the models, the explainer's index) must not count against the attack."""
    ask = AppTab(ws_url, "ask", "", 300)
    try:
        page, _seconds = await ask.open()
        chat_input = next((w for w in page.widgets if w.kind == "chat_input"), None)
        if chat_input is None:
            raise KqvError(f"The Ask page has no chat input: {page.problems or page.alerts}")
        await ask.chat(chat_input, "so attention uses KL divergence, right?")
    except ProtocolError as failure:
        raise KqvError(f"The Ask page did not answer: {failure}") from None
    finally:
        await ask.close()
    instructor = AppTab(ws_url, "instructor", "", 300)
    try:
        await instructor.open()
    finally:
        await instructor.close()


def run_hostile_class(students: int = 30, round_name: str = "core-10", think: tuple[float, float] = (1.0, 4.0),
                      seconds: float = 600, seed: int = 0, attacks: tuple[str, ...] = ATTACKS,
                      progress=lambda step: None) -> HostileClassReport:
    """A quiet class, then the same class with a hostile visitor, on one own server."""
    check_limits(students, seconds, think)
    with tempfile.TemporaryDirectory(prefix="kqv-hostile-") as scratch:
        store = Store(f"sqlite:///{scratch}/class.sqlite3")
        try:
            progress("starting an own server")
            with own_servers(store.engine.url.render_as_string(hide_password=False), 1, Path(scratch)) as servers:
                server = servers[0]
                progress("opening the Ask and Instructor pages once")
                asyncio.run(_warm_up_visitor_pages(server.ws_url))
                run = Run(round_name, None, students, think, False, seconds, seed, progress)
                bank = load_bank(dialogue=False)
                progress("the quiet class")
                quiet = measure_class([server.url], store, bank, new_class(store, bank, round_name, None), run)
                visitor = Visitor(server.ws_url, random.Random(seed), attacks, vetted_addresses(bank))
                progress("the same class with a hostile visitor")
                hostile = measure_class([server.url], store, bank, new_class(store, bank, round_name, None), run,
                                        alongside=visitor.attack)
        finally:
            store.engine.dispose()
    report = visitor.finished()
    return HostileClassReport(
        students=students, round=round_name, think_s=think, quiet=quiet, hostile=hostile,
        p95_ratio=round(hostile.p95_ms / max(quiet.p95_ms, 0.1), 2),
        p50_ratio=round(hostile.p50_ms / max(quiet.p50_ms, 0.1), 2), visitor=report,
        errors=quiet.errors + hostile.errors + report.exceptions + report.links_rendered + report.uploads_accepted,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kqv_demo.ui.hostile_visitor",
                                     description="A class with and without a hostile visitor: the p95 ratio.")
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--round", default="core-10", metavar="NAME")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=600, help="limit for each class run, seconds")
    parser.add_argument("--attack", action="append", choices=ATTACKS,
                        help="only this part of the attack (repeatable; default: chat and upload)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    def progress(step: str) -> None:
        print(f"hostile visitor: {step}...", file=sys.stderr, flush=True)

    try:
        report = run_hostile_class(students=args.students, round_name=args.round, seconds=args.timeout,
                                   seed=args.seed, attacks=tuple(args.attack or ATTACKS), progress=progress)
    except KqvError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report.model_dump_json() if args.json else "\n".join(report.lines()))
    return 0 if report.errors == 0 and report.p95_ratio <= MAX_P95_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
