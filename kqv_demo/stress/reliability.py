"""Every reliability measurement of the app, as one JSON object: `python -m kqv_demo stress --json`.

    {"reliability": {"yaml_fuzz": {...}, "hostile_text": {...}, "kill9_sqlite": {...},
                     "kill9_postgresql": {...}, "hostile_visitor": {...}, "two_servers_postgresql": {...},
                     "failures": [...], "seconds": ...}}

- yaml_fuzz: mutated YAML files through the bank, round files and uploads (kqv_demo/stress/yaml_fuzz.py);
- hostile_text: hostile chat messages and demo inputs (kqv_demo/stress/hostile_text.py);
- kill9_*: SIGKILL of the app server mid-round (kqv_demo/stress/crash.py), on SQLite and on PostgreSQL;
- hostile_visitor: a class, quiet and then with a hostile visitor; the students' p95 ratio;
- two_servers_postgresql: a class split between two app processes on one PostgreSQL.

The first two run in this process (no Streamlit); the others drive the app over its websocket in
processes of their own. PostgreSQL: the URL given, else $KQV_TEST_DATABASE_URL, else a throw-away server
started by `.ci/pg` when PostgreSQL is installed; otherwise those two are reported as skipped.
`failures` lists every figure that misses its bar (0 crashes, 0 exceptions, 0 answers lost, every round
resumed, p95 ratio at most 2, every answer stored once, the dashboards agreeing); `python -m kqv_demo
stress` exits 1 when it is not empty. (Not part of `bench --json`: the full run takes about half an hour.)
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from kqv_demo.settings import PROJECT_ROOT
from kqv_demo.stress import crash, service
from kqv_demo.stress.service import MAX_P95_RATIO, POSTGRES_VARIABLE

CI_PG = PROJECT_ROOT / ".ci" / "pg"


@dataclass(frozen=True)
class Sizes:
    yaml_files: int
    hostile_texts: int
    kills: int
    hostile_class: int
    two_server_students: int


FULL = Sizes(yaml_files=1000, hostile_texts=1000, kills=20, hostile_class=30, two_server_students=200)
QUICK = Sizes(yaml_files=100, hostile_texts=100, kills=3, hostile_class=10, two_server_students=40)


def measure(quick: bool = False, database_url: str | None = None, postgres: bool = True,
            progress: Callable[[str], None] = lambda step: None) -> dict:
    """Every measurement (see the module's docstring); `postgres=False` leaves the PostgreSQL ones out."""
    sizes = QUICK if quick else FULL
    started = time.perf_counter()
    figures: dict[str, object] = {"sizes": "quick" if quick else "full"}
    progress(f"{sizes.yaml_files} mutated YAML files")
    figures["yaml_fuzz"] = _yaml_fuzz(sizes.yaml_files)
    progress(f"{sizes.hostile_texts} hostile chat messages and demo inputs")
    figures["hostile_text"] = _hostile_text(sizes.hostile_texts)
    progress(f"kill -9 of the server mid-round, {sizes.kills} times, on SQLite")
    figures["kill9_sqlite"] = crash.run(kills=sizes.kills)
    progress(f"a class of {sizes.hostile_class}, quiet and with a hostile visitor")
    figures["hostile_visitor"] = _trimmed_visitor(service.hostile_visitor(students=sizes.hostile_class))
    if postgres:
        figures.update(_postgres_figures(sizes, database_url, progress))
    figures["failures"] = failures(figures)
    figures["seconds"] = round(time.perf_counter() - started, 1)
    return figures


def _yaml_fuzz(count: int) -> dict:
    from kqv_demo.stress import yaml_fuzz

    return yaml_fuzz.run(count=count, seed=0)


def _hostile_text(count: int) -> dict:
    from kqv_demo.stress import hostile_text

    return hostile_text.run(count=count, seed=0)


def _trimmed_visitor(report: dict) -> dict:
    """The hostile-visitor report with each class run cut to its figures (no per-server lists)."""
    for leg in ("quiet", "hostile"):
        if isinstance(report.get(leg), dict):
            report[leg] = {key: report[leg][key] for key in (
                "students", "interactions", "p50_ms", "p95_ms", "max_ms", "errors", "error_samples",
                "answers_expected", "answers_stored", "answers_duplicated", "seconds") if key in report[leg]}
    return report


# --- PostgreSQL ------------------------------------------------------------------------------------
def _postgres_figures(sizes: Sizes, database_url: str | None, progress: Callable[[str], None]) -> dict:
    url = database_url or os.environ.get(POSTGRES_VARIABLE)
    if url:
        return postgres_part(sizes, url, progress)
    problem = throwaway_postgres_problem()
    if problem:
        skipped = {"skipped": f"no PostgreSQL: {problem}"}
        return {"kill9_postgresql": skipped, "two_servers_postgresql": skipped}
    progress("starting a throw-away PostgreSQL (.ci/pg) for the PostgreSQL runs")
    # No time limit: killed at one, .ci/pg could not stop its server; each run inside has limits of its own.
    found = service.own_process_json("kqv_demo.stress.reliability",
                                     ["--postgres-part", *(["--quick"] if sizes == QUICK else [])],
                                     timeout=None, prefix=(str(CI_PG),))
    if "error" in found:
        return {"kill9_postgresql": found, "two_servers_postgresql": found}
    return found


def throwaway_postgres_problem() -> str | None:
    """Why `.ci/pg` cannot start a server here (None: it can). It is not installed from here."""
    if not CI_PG.exists():
        return ".ci/pg is missing"
    if not any(os.access(f"{folder}/initdb", os.X_OK) for folder in glob.glob("/usr/lib/postgresql/*/bin")):
        return "PostgreSQL is not installed (apt-get install postgresql), and no --database-url was given"
    if importlib.util.find_spec("psycopg") is None:
        return "the driver psycopg is not installed (pip install -r requirements-dev.txt)"
    return None


def postgres_part(sizes: Sizes, database_url: str, progress: Callable[[str], None] = lambda step: None) -> dict:
    progress(f"kill -9 of the server mid-round, {sizes.kills} times, on PostgreSQL")
    kill9 = crash.run(kills=sizes.kills, database_url=database_url)
    progress(f"{sizes.two_server_students} students on two app servers sharing PostgreSQL")
    two = service.two_servers(students=sizes.two_server_students, database_url=database_url)
    return {"kill9_postgresql": kill9, "two_servers_postgresql": two}


# --- the bars --------------------------------------------------------------------------------------
def failures(figures: dict) -> list[str]:
    """Every figure that misses its bar, as a sentence; a measurement that could not run is one too."""
    found: list[str] = []
    for name, result in figures.items():
        if not isinstance(result, dict):
            continue
        if "error" in result:
            found.append(f"{name}: {result['error']}")
            continue
        if "skipped" in result:
            continue
        found += [f"{name}: {problem}" for problem in _misses(name, result)]
    return found


def _misses(name: str, r: dict) -> list[str]:
    checks: list[tuple[bool, str]] = []
    if name == "yaml_fuzz":
        checks = [(r["crashes"] == 0, f"{r['crashes']} crashes"),
                  (r["tracebacks"] == 0, f"{r['tracebacks']} tracebacks"),
                  (r["errors_without_line"] == 0, f"{r['errors_without_line']} errors without file:line")]
    elif name == "hostile_text":
        checks = [(r["exceptions"] == 0, f"{r['exceptions']} exceptions"),
                  (r["links_rendered"] == 0, f"{r['links_rendered']} links or images rendered")]
    elif name.startswith("kill9"):
        checks = [(r["answers_lost"] == 0, f"{r['answers_lost']} acknowledged answers lost"),
                  (r["resume_failures"] == 0, f"{r['resume_failures']} rounds did not resume"),
                  (r["errors"] == 0, f"{r['errors']} errors: {r['error_samples'][:2]}")]
    elif name == "hostile_visitor":
        checks = [(r["p95_ratio"] <= MAX_P95_RATIO,
                   f"students' p95 {r['p95_ratio']}x the quiet run (bar {MAX_P95_RATIO:g}x)"),
                  (r["errors"] == 0, f"{r['errors']} errors")]
    elif name.startswith("two_servers"):
        checks = [(r["errors"] == 0, f"{r['errors']} errors: {r['error_samples'][:2]}"),
                  (r["answers_stored"] == r["answers_expected"] and r["answers_duplicated"] == 0,
                   f"{r['answers_stored']} of {r['answers_expected']} answers stored, {r['answers_duplicated']} twice"),
                  (r["dashboards_agree"], "the servers' dashboards disagree with the database")]
    return [message for ok, message in checks if not ok]


def summary_lines(figures: dict) -> list[str]:
    """The headline figures, one line per measurement (the JSON has every figure)."""
    def line(name: str, r: dict) -> str:
        if "skipped" in r or "error" in r:
            return f"{name:24} {r.get('skipped') or r.get('error')}"
        if name == "yaml_fuzz":
            return (f"{name:24} {r['files']} files: {r['crashes']} crashes, {r['tracebacks']} tracebacks, "
                    f"{r['errors_without_line']} errors without a line; max {r['max_seconds_per_file']} s per file")
        if name == "hostile_text":
            return (f"{name:24} {r['messages']} messages: {r['exceptions']} exceptions, {r['links_rendered']} links "
                    f"rendered; p95 {r['p95_ms']} ms, "
                    f"max {r['max_ms']} ms per message")
        if name.startswith("kill9"):
            return (f"{name:24} {r['kills']} kills: {r['answers_lost']} of {r['answers_acknowledged']} acknowledged "
                    f"answers lost, {r['resumes']} resumes ({r['resume_failures']} failed), {r['errors']} errors")
        if name == "hostile_visitor":
            return (f"{name:24} {r['students']} students: p95 {r['quiet']['p95_ms']} ms quiet, "
                    f"{r['hostile']['p95_ms']} ms attacked, ratio {r['p95_ratio']}; {r['errors']} errors")
        return (f"{name:24} {r['students']} students on {r['servers']} servers ({r['database']}): p50/p95 "
                f"{r['p50_ms']}/{r['p95_ms']} ms, {r['errors']} errors, {r['answers_stored']} of "
                f"{r['answers_expected']} answers stored, dashboards "
                f"{'agree' if r['dashboards_agree'] else 'DISAGREE'}")

    lines = [line(name, result) for name, result in figures.items() if isinstance(result, dict)]
    lines += [f"MISSED: {failure}" for failure in figures.get("failures", [])] or ["every bar met"]
    return lines


def main(argv: list[str] | None = None) -> int:
    """`--postgres-part`: the PostgreSQL runs on $KQV_TEST_DATABASE_URL (what `.ci/pg` runs)."""
    parser = argparse.ArgumentParser(prog="python -m kqv_demo.stress.reliability")
    parser.add_argument("--postgres-part", action="store_true", required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true", help="(always: it prints one JSON object)")
    args = parser.parse_args(argv)
    url = os.environ.get(POSTGRES_VARIABLE)
    if not url:
        print(f"error: ${POSTGRES_VARIABLE} is not set (run under .ci/pg)", file=sys.stderr)
        return 2
    figures = postgres_part(QUICK if args.quick else FULL, url,
                            lambda step: print(f"stress: {step}...", file=sys.stderr, flush=True))
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
