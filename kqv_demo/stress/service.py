"""The app measured like a service: a class with a hostile visitor, and a class on two app servers.

    from kqv_demo.stress import service
    service.hostile_visitor(students=30)                  # {"p95_ratio": 1.4, "quiet": {...}, "hostile": {...}, ...}
    service.two_servers(students=200, database_url=URL)   # {"p95_ms": ..., "answers_stored": ..., "dashboards": ...}

Both drive the real app over Streamlit's websocket (kqv_demo/ui/hostile_visitor.py and
kqv_demo/ui/loadtest.py), so each runs in a process of its own: library modules never import Streamlit.
`own_process_json` is the one way they are started and read (the kill -9 drill and the PostgreSQL
part of `stress`, run under `.ci/pg`, use it too).
"""

from __future__ import annotations

import json
import subprocess
import sys

from kqv_demo.settings import PROJECT_ROOT

MAX_P95_RATIO = 2.0  # issue 12: with a hostile visitor, the students' p95 within 2x of the quiet run
POSTGRES_VARIABLE = "KQV_TEST_DATABASE_URL"  # what .ci/pg sets: a PostgreSQL that several servers can share


def own_process_json(module: str, args: list[str], timeout: float | None = 3600,
                     prefix: tuple[str, ...] = ()) -> dict:
    """Run `python -m module ARGS --json` (behind `prefix`, e.g. `.ci/pg`) and return the JSON object
    it prints last.

    Its progress (stderr) goes to ours. An exit code of 1 with a JSON object is a measurement that
    missed its bar, still a measurement; no JSON at all is {"error": ...}. `timeout=None`: no limit.
    """
    try:
        finished = subprocess.run([*prefix, sys.executable, "-m", module, *args, "--json"], cwd=PROJECT_ROOT,
                                  stdout=subprocess.PIPE, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"{module} did not finish within {timeout:.0f} s"}
    for line in reversed(finished.stdout.strip().splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                break
    return {"error": f"{module} exited with code {finished.returncode} without a result (its messages are above)"}


def hostile_visitor(students: int = 30, seed: int = 0) -> dict:
    """A class of `students`, quiet and then with one hostile visitor (chat and uploads): see
    kqv_demo/ui/hostile_visitor.py. The figure to watch is `p95_ratio` (bar: at most MAX_P95_RATIO)."""
    return own_process_json("kqv_demo.ui.hostile_visitor", ["--students", str(students), "--seed", str(seed)])


def two_servers(students: int = 200, database_url: str | None = None, seed: int = 0) -> dict:
    """`students` students split between two own app processes on one database (`database_url`, else
    $KQV_TEST_DATABASE_URL): every answer stored once, both dashboards showing the database's counts."""
    args = ["--students", str(students), "--servers", "2", "--seed", str(seed), "--timeout", "1200"]
    if database_url:
        args += ["--database-url", database_url]
    return own_process_json("kqv_demo.ui.loadtest", args)
