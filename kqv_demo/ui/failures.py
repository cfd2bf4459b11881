"""What a visitor sees when something breaks: a plain message and a reference, never a traceback.

The traceback, with its server paths and SQL parameters, goes to the server's log under the same
reference, so the person running the server can find it. Streamlit's own control flow (st.stop,
st.rerun) derives from BaseException and passes through untouched.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
from sqlalchemy.exc import InternalError, OperationalError

from kqv_demo.errors import KqvError
from kqv_demo.markup import literal

log = logging.getLogger("kqv_demo.ui")

DATABASE_PROBLEM = (
    "Progress cannot be saved right now: the server's database is unavailable or cannot be written "
    "(read-only, or the disk is full). Nothing you answered before is lost. The Demo lab, the Claims "
    "and Ask still work; please tell the person running this server."
)


@contextmanager
def shown_plainly() -> Iterator[None]:
    """Run a page; an unexpected error becomes a plain message with a reference to the server log."""
    try:
        yield
    except KqvError as problem:  # written for people already; may quote what a visitor typed or linked
        st.error(literal(str(problem)))
    except (OperationalError, InternalError):  # the database failed outside the Store's own handling
        reference = secrets.token_hex(4)
        log.exception("database error [%s]", reference)
        st.error(f"{DATABASE_PROBLEM} (Reference {reference}.)")
    except Exception:  # noqa: BLE001 - the last line of defence; the log keeps the details
        reference = secrets.token_hex(4)
        log.exception("unexpected error [%s]", reference)
        st.error(f"Something went wrong on this page, and it is our fault, not yours. Please reload; if it "
                 f"happens again, tell the person running this server the reference {reference}.")
