"""How the sessions of one app process share its CPU (imported by app.py, so set in every server)."""

from __future__ import annotations

import sys

# Every session's script runs in a thread of one process, under one GIL. A thread that gave the GIL up
# (for any I/O: a websocket message, a database read, a torch kernel) gets it back only when the running
# thread lets go, by default after 5 ms. A quiz page's run does dozens of such round trips, so while one
# visitor kept a thread busy (long chat messages and uploads, back to back) every student's click became
# several times slower (class of 8: p95 70 ms quiet, 268 ms attacked). With 1 ms the busy thread yields
# sooner; the extra switching costs it a few percent.
SWITCH_INTERVAL_S = 0.001


def share_the_gil_finely() -> None:
    sys.setswitchinterval(SWITCH_INTERVAL_S)


share_the_gil_finely()
