"""kill -9 of the app server mid-round, `kills` times: 0 acknowledged answers lost, every round resumes.

    from kqv_demo.stress import crash
    crash.run(kills=20)                              # SQLite: {"answers_lost": 0, "resume_failures": 0, ...}
    crash.run(kills=20, database_url="postgresql+psycopg://...")

The drill itself (kqv_demo/ui/crash_drill.py) drives the app over Streamlit's websocket, so it runs in a
process of its own: library modules never import Streamlit.
"""

from __future__ import annotations

from kqv_demo.stress.service import own_process_json


def run(kills: int = 20, students: int = 6, database_url: str | None = None, seed: int = 0) -> dict:
    """The drill's report as a dict (see CrashReport in kqv_demo/ui/crash_drill.py)."""
    args = ["--kills", str(kills), "--students", str(students), "--seed", str(seed)]
    if database_url:
        args += ["--database-url", database_url]
    return own_process_json("kqv_demo.ui.crash_drill", args)
