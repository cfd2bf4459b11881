"""Where learners' progress lives: SQLite by default, any SQLAlchemy URL via $DATABASE_URL.

Answers are written as they are given; an answer to the same item of the same round is
stored once (a double click or a replayed request changes nothing). Two answers that arrive
at the same moment are both stored, even when they reschedule the same review card.

The schema changes by named migrations (`MIGRATIONS`), each applied once and recorded in the
table `migrations`, under a lock (PostgreSQL: an advisory lock; SQLite: BEGIN IMMEDIATE), so
that several app processes starting at once on a fresh database create it exactly once.
Databases of the older numbered schema (`schema_version` 1 or 2) are adopted: their version
becomes the migrations it stood for. `schema_version` itself is kept at LEGACY_VERSION_MARK,
so that an app from before named migrations refuses this database instead of writing to it.

When the database cannot be written or reached (read-only, disk full, server down), every
method raises `StorageUnavailable` (`AnswerNotSaved` for an answer) with a plain message.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    Column, Connection, DateTime, Engine, ForeignKey, Integer, MetaData, String, Table, Text, UniqueConstraint,
    create_engine, delete, event, func, insert, make_url, select, text, update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, InternalError, OperationalError

from kqv_demo import settings
from kqv_demo.errors import KqvError, UserInputError

MAX_NAME = 80
DEFAULT_MAX_STUDENTS = 300  # joins per class round unless the instructor sets another cap
LEGACY_VERSION_MARK = 3  # what `schema_version` says once named migrations run: apps of schema <= 2 refuse it
MIGRATION_LOCK = 0x6B7176_6D6967  # PostgreSQL advisory lock key ("kqvmig")

log = logging.getLogger("kqv_demo.storage")


@dataclass(frozen=True)
class Card:
    """A learner's review card for one claim: its Leitner box and when it is due."""

    claim_id: str
    box: int
    due: datetime


# The review rule (quiz.scheduling.schedule): the card before this answer (None: the claim's first), the
# claim, whether the answer was right, its confidence (1-3) and the moment -> the card after. The caller
# passes it in, so storage knows no quiz rule and still moves the card in the answer's own transaction.
Reschedule = Callable[[Card | None, str, bool, int, datetime], Card]

metadata = MetaData()
migrations = Table(
    "migrations", metadata,
    Column("name", String(100), primary_key=True),
    Column("applied", DateTime, nullable=False),
)
schema_version = Table("schema_version", metadata, Column("version", Integer, nullable=False))  # legacy marker
learners = Table(
    "learners", metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(64), unique=True, nullable=False),
    Column("name", String(MAX_NAME), nullable=False),
    Column("created", DateTime, nullable=False),
)
rounds = Table(
    "rounds", metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(64), unique=True, nullable=False),
    Column("learner_id", ForeignKey("learners.id"), nullable=False, index=True),
    Column("spec", Text, nullable=False),  # RoundSpec as JSON
    Column("item_ids", Text, nullable=False),  # the drawn items, in order, as JSON
    Column("created", DateTime, nullable=False),  # when the learner could start: a time limit counts from here
    Column("finished", DateTime),
)
answers = Table(
    "answers", metadata,
    Column("id", Integer, primary_key=True),
    Column("round_id", ForeignKey("rounds.id"), nullable=False, index=True),
    Column("item_id", String(200), nullable=False),
    Column("claim_id", String(100), nullable=False),
    Column("response", String(500), nullable=False),
    Column("correct", Integer, nullable=False),
    Column("confidence", Integer, nullable=False),
    Column("answered", DateTime, nullable=False),
    UniqueConstraint("round_id", "item_id"),
)
cards = Table(
    "cards", metadata,
    Column("learner_id", ForeignKey("learners.id"), primary_key=True),
    Column("claim_id", String(100), primary_key=True),
    Column("box", Integer, nullable=False),
    Column("due", DateTime, nullable=False),
)
# class rounds: an instructor's round that every student of a class plays
classes = Table(
    "classes", metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(16), unique=True, nullable=False),
    Column("title", String(200), nullable=False),
    Column("spec", Text, nullable=False),  # RoundSpec as JSON
    Column("item_ids", Text, nullable=False),  # the items every student gets, in order, as JSON
    Column("key_hash", String(200), nullable=False),  # the instructor key, salted and hashed
    Column("created", DateTime, nullable=False),
    # 0003-class-admission
    Column("max_students", Integer, nullable=False, server_default=text(str(DEFAULT_MAX_STUDENTS))),
    Column("started", DateTime),  # None: students who joined wait for the instructor to start
    Column("joining_closed", DateTime),  # None: new students may join
)
class_rounds = Table(
    "class_rounds", metadata,
    Column("class_id", ForeignKey("classes.id"), nullable=False, index=True),
    Column("round_id", ForeignKey("rounds.id"), primary_key=True),
    Column("learner_id", ForeignKey("learners.id"), nullable=False),
    Column("removed", DateTime),  # 0003: removed by the instructor (out of the results, cannot rejoin)
    UniqueConstraint("class_id", "learner_id"),  # one round per learner per class
)


# --- migrations ----------------------------------------------------------------------------
# A migration's DDL is frozen once released: a database migrated step by step and a fresh one
# must end up alike (tests/test_storage.py compares them). Creating a table of the final schema
# is fine only while no later migration alters that table.
def _progress_tables(tx: Connection) -> None:
    metadata.create_all(tx, tables=[schema_version, learners, rounds, answers, cards])  # checkfirst


def _class_tables(tx: Connection) -> None:
    """The class tables as schema 2 made them (0003 adds columns)."""
    frozen = MetaData()
    Table("learners", frozen, Column("id", Integer, primary_key=True))  # for the foreign keys only
    Table("rounds", frozen, Column("id", Integer, primary_key=True))
    made = Table(
        "classes", frozen,
        Column("id", Integer, primary_key=True),
        Column("code", String(16), unique=True, nullable=False),
        Column("title", String(200), nullable=False),
        Column("spec", Text, nullable=False),
        Column("item_ids", Text, nullable=False),
        Column("key_hash", String(200), nullable=False),
        Column("created", DateTime, nullable=False),
    )
    joined = Table(
        "class_rounds", frozen,
        Column("class_id", ForeignKey("classes.id"), nullable=False, index=True),
        Column("round_id", ForeignKey("rounds.id"), primary_key=True),
        Column("learner_id", ForeignKey("learners.id"), nullable=False),
        UniqueConstraint("class_id", "learner_id"),
    )
    frozen.create_all(tx, tables=[made, joined])  # checkfirst


def _class_admission(tx: Connection) -> None:
    """A cap on joins, the instructor's start and close, removed students."""
    timestamp = DateTime().compile(dialect=tx.dialect)
    tx.execute(text(f"ALTER TABLE classes ADD COLUMN max_students INTEGER NOT NULL DEFAULT {DEFAULT_MAX_STUDENTS}"))
    tx.execute(text(f"ALTER TABLE classes ADD COLUMN started {timestamp}"))
    tx.execute(text(f"ALTER TABLE classes ADD COLUMN joining_closed {timestamp}"))
    tx.execute(text(f"ALTER TABLE class_rounds ADD COLUMN removed {timestamp}"))
    tx.execute(update(classes).values(started=classes.c.created))  # older classes could always be played at once
    tx.execute(delete(schema_version))
    tx.execute(insert(schema_version).values(version=LEGACY_VERSION_MARK))


@dataclass(frozen=True)
class Migration:
    name: str
    apply: Callable[[Connection], None]


MIGRATIONS: tuple[Migration, ...] = (
    Migration("0001-progress", _progress_tables),
    Migration("0002-classes", _class_tables),
    Migration("0003-class-admission", _class_admission),
)
LEGACY_VERSIONS = {1: ("0001-progress",), 2: ("0001-progress", "0002-classes")}


# --- errors ----------------------------------------------------------------------------------
class StorageUnavailable(KqvError):
    """The progress database cannot be read or written right now; the message says why, plainly."""


class AnswerNotSaved(StorageUnavailable):
    """An answer could not be stored: the learner must be told, never left believing it was."""


def _reason(error: BaseException) -> str:
    # The first failure can be hidden behind a later one: SQLite rolls a transaction back by itself when the
    # disk is full, and the savepoint's rollback then fails with "no such savepoint". Read the whole chain.
    chain: list[str] = []
    while error is not None and len(chain) < 5:
        chain.append(str(getattr(error, "orig", None) or error).lower())
        error = error.__cause__ or error.__context__
    said = " | ".join(chain)
    if any(word in said for word in ("readonly", "read-only", "read only")):
        return "is read-only"
    if "full" in said or "no space" in said:
        return "is full (no space left)"
    if "locked" in said or "timeout" in said or "timed out" in said:
        return "is too busy"
    if "connect" in said or "unable to open" in said:
        return "cannot be reached"
    return "is not working"


def _unavailable(error: DBAPIError, kind: type[StorageUnavailable]) -> StorageUnavailable:
    reason = _reason(error)
    log.error("database error (%s): %s", reason, error.orig, exc_info=error)
    if kind is AnswerNotSaved:
        return AnswerNotSaved(
            f"Your answer was NOT saved: the server's database {reason}. Keep this page open and try again in a "
            "moment; if it keeps failing, tell the person running this server. Your earlier answers are kept."
        )
    return kind(
        f"Progress cannot be saved or loaded right now: the server's database {reason}. Nothing saved before "
        "is lost. The Demo lab, the Claims and Ask still work; please tell the person running this server."
    )


# --- records ---------------------------------------------------------------------------------
def database_url() -> str:
    return os.environ.get("DATABASE_URL") or f"sqlite:///{settings.data_dir() / 'kqv.sqlite3'}"


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def clean_name(name: str) -> str:
    """A display name: trimmed, control characters removed, at most MAX_NAME characters."""
    printable = "".join(ch for ch in name if ch.isprintable()).strip()
    if not printable:
        raise UserInputError("Please enter a name (any nickname will do).")
    return printable[:MAX_NAME]


@dataclass(frozen=True)
class StoredRound:
    id: int
    key: str
    learner_id: int
    spec: dict
    item_ids: list[str]
    finished: datetime | None
    created: datetime | None = None


@dataclass(frozen=True)
class FinishedRound:
    """A finished round as the learner's page lists it: when, what, and the score."""
    key: str
    title: str
    finished: datetime
    items: int
    answered: int
    correct: int


@dataclass(frozen=True)
class StoredAnswer:
    item_id: str
    claim_id: str
    response: str
    correct: bool
    confidence: int
    answered: datetime | None = None


@dataclass(frozen=True)
class StoredClass:
    id: int
    code: str
    title: str
    spec: dict
    item_ids: list[str]
    key_hash: str
    created: datetime
    max_students: int = DEFAULT_MAX_STUDENTS
    started: datetime | None = None  # None: waiting for the instructor to start it
    joining_closed: datetime | None = None  # None: new students may join

    @property
    def waiting(self) -> bool:
        return self.started is None

    @property
    def joining_open(self) -> bool:
        return self.joining_closed is None


@dataclass(frozen=True)
class ClassMember:
    """One student of a class: their profile and their round of the class."""

    learner_id: int
    name: str
    round: StoredRound


@dataclass(frozen=True)
class Membership:
    """The class a round belongs to, and whether its student was removed from it."""

    stored_class: StoredClass
    removed: datetime | None


REMOVED_MESSAGE = "Your instructor removed you from this class round, so you cannot answer in it any more."


class Store:
    def __init__(self, url: str | None = None) -> None:
        url = url or database_url()
        parsed = make_url(url)
        options: dict = {}
        if parsed.get_backend_name() == "postgresql":
            # Read committed (PostgreSQL's default, stated): a card created by a simultaneous answer is
            # visible to the next statement. A server that does not answer fails in seconds, not minutes;
            # a pooled connection that a server restart cut is replaced before use, not failed on an answer.
            options = {"isolation_level": "READ COMMITTED", "connect_args": {"connect_timeout": 10},
                       "pool_pre_ping": True}
        try:
            if parsed.get_backend_name() == "sqlite" and parsed.database and not parsed.query.get("uri"):
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            log.error("cannot create the folder of %s: %s", parsed.database, error)
            raise StorageUnavailable(
                "Progress cannot be saved or loaded: the server's database folder cannot be created "
                f"({error.strerror}). "
                "The Demo lab, the Claims and Ask still work; please tell the person running this server."
            ) from None
        self.engine: Engine = create_engine(parsed, **options)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_connect)
            event.listen(self.engine, "begin", _sqlite_begin)
        self.migrate()

    # schema ---------------------------------------------------------------------------
    def migrate(self) -> None:
        """Apply the migrations this database lacks, once, even with several processes starting at once.

        A database with nothing to do is only read, so a read-only one still opens.
        """
        if not self._pending_migrations():
            return
        with self._tx(write_lock=True) as tx:
            if tx.dialect.name == "postgresql":
                tx.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK)))  # held until commit
            migrations.create(tx, checkfirst=True)
            applied = set(tx.execute(select(migrations.c.name)).scalars()) or _adopt_legacy(tx)
            _refuse_unknown(applied)
            for migration in MIGRATIONS:
                if migration.name not in applied:
                    migration.apply(tx)
                    tx.execute(insert(migrations).values(name=migration.name, applied=now()))
                    log.info("database migration %s applied", migration.name)

    def _pending_migrations(self) -> list[str]:
        with self._tx() as tx:
            if not tx.dialect.has_table(tx, "migrations"):
                return [migration.name for migration in MIGRATIONS]
            applied = set(tx.execute(select(migrations.c.name)).scalars())
        _refuse_unknown(applied)
        return [migration.name for migration in MIGRATIONS if migration.name not in applied]

    def applied_migrations(self) -> list[str]:
        with self._tx() as tx:
            return list(tx.execute(select(migrations.c.name).order_by(migrations.c.name)).scalars())

    @contextmanager
    def _tx(self, *, write_lock: bool = False, failure: type[StorageUnavailable] = StorageUnavailable) -> Iterator:
        """One transaction. `write_lock`: take SQLite's write lock at BEGIN (read-then-write that must be atomic;
        on PostgreSQL the caller locks rows). Database failures become `failure`, with a plain message."""
        try:
            with self.engine.connect() as connection:
                if write_lock:
                    connection.execution_options(sqlite_write_lock=True)
                with connection.begin():
                    yield connection
        except (OperationalError, InternalError) as error:
            raise _unavailable(error, failure) from error

    # learners -------------------------------------------------------------------------
    def create_learner(self, name: str) -> str:
        key = secrets.token_urlsafe(12)
        with self._tx() as tx:
            tx.execute(insert(learners).values(key=key, name=clean_name(name), created=now()))
        return key

    def learner(self, key: str) -> tuple[int, str] | None:
        with self._tx() as tx:
            row = tx.execute(select(learners.c.id, learners.c.name).where(learners.c.key == key)).first()
        return (row.id, row.name) if row else None

    # rounds ---------------------------------------------------------------------------
    def start_round(self, learner_id: int, spec: dict, item_ids: list[str]) -> str:
        key = secrets.token_urlsafe(9)
        with self._tx() as tx:
            tx.execute(insert(rounds).values(
                key=key, learner_id=learner_id, spec=json.dumps(spec), item_ids=json.dumps(item_ids), created=now(),
            ))
        return key

    def round(self, key: str) -> StoredRound | None:
        with self._tx() as tx:
            row = tx.execute(select(rounds).where(rounds.c.key == key)).first()
        if row is None:
            return None
        return _stored_round(row)

    def open_rounds(self, learner_id: int) -> list[StoredRound]:
        with self._tx() as tx:
            rows = tx.execute(select(rounds).where(rounds.c.learner_id == learner_id, rounds.c.finished.is_(None))
                              .order_by(rounds.c.id.desc())).all()
        return [_stored_round(row) for row in rows]

    def finished_rounds(self, learner_id: int, limit: int = 5) -> list[FinishedRound]:
        """The learner's most recently finished rounds, newest first, each with its score."""
        scores = (select(answers.c.round_id, func.count().label("answered"),
                         func.sum(answers.c.correct).label("correct"))
                  .group_by(answers.c.round_id).subquery())
        query = (select(rounds, scores.c.answered, scores.c.correct)
                 .outerjoin(scores, scores.c.round_id == rounds.c.id)
                 .where(rounds.c.learner_id == learner_id, rounds.c.finished.is_not(None))
                 .order_by(rounds.c.finished.desc(), rounds.c.id.desc()).limit(limit))
        with self._tx() as tx:
            rows = tx.execute(query).all()
        return [FinishedRound(row.key, json.loads(row.spec).get("title", "round"), row.finished,
                              len(json.loads(row.item_ids)), row.answered or 0, int(row.correct or 0)) for row in rows]

    def finish_round(self, round_id: int) -> None:
        with self._tx() as tx:
            tx.execute(update(rounds).where(rounds.c.id == round_id, rounds.c.finished.is_(None))
                       .values(finished=now()))

    # answers --------------------------------------------------------------------------
    def record_answer(self, stored: StoredRound, item_id: str, claim_id: str, response: str, correct: bool,
                      confidence: int, *, reschedule: Reschedule) -> bool:
        """Store an answer and move its claim's review card by `reschedule`, in one transaction; False (and
        nothing changed) if this item was already answered.

        A closed round (finished, timed out, or its student removed from the class) and a class round the
        instructor has not started refuse new answers (UserInputError). A database that cannot be written
        raises AnswerNotSaved.
        """
        if item_id not in stored.item_ids:
            raise UserInputError(f"{item_id!r} is not part of this round.")
        moment = now()
        with self._tx(failure=AnswerNotSaved) as tx:
            if not _insert_answer(tx, stored.id, item_id, claim_id, response, correct, confidence, moment):
                return False
            _refuse_when_closed(tx, stored.id)  # after the insert: a repeat is still recognised as one
            _reschedule(tx, stored.learner_id, claim_id, correct, confidence, moment, reschedule)
        return True

    def answers(self, round_id: int) -> list[StoredAnswer]:
        with self._tx() as tx:
            rows = tx.execute(select(answers).where(answers.c.round_id == round_id).order_by(answers.c.id)).all()
        return [_stored_answer(r) for r in rows]

    # review cards ---------------------------------------------------------------------
    def cards(self, learner_id: int) -> list[Card]:
        with self._tx() as tx:
            rows = tx.execute(select(cards).where(cards.c.learner_id == learner_id)).all()
        return [Card(r.claim_id, r.box, r.due) for r in rows]

    # classes --------------------------------------------------------------------------
    def create_class(self, code: str, title: str, spec: dict, item_ids: list[str], key_hash: str, *,
                     max_students: int = DEFAULT_MAX_STUDENTS, start_now: bool = True) -> bool:
        """Store a class round; False (nothing stored) when `code` is already taken.

        `start_now=False`: students who join wait until `start_class`.
        """
        moment = now()
        try:
            with self._tx() as tx:
                tx.execute(insert(classes).values(
                    code=code, title=title[:200], spec=json.dumps(spec), item_ids=json.dumps(item_ids),
                    key_hash=key_hash, created=moment, max_students=max_students, started=moment if start_now else None,
                ))
        except IntegrityError:
            return False
        return True

    def class_by_code(self, code: str) -> StoredClass | None:
        with self._tx() as tx:
            row = tx.execute(select(classes).where(classes.c.code == code)).first()
        return _stored_class(row) if row else None

    def join_class(self, class_id: int, learner_id: int, spec: dict, item_ids: list[str]) -> str:
        """The learner's round of this class: created on the first visit, the same round ever after.

        New students are refused (UserInputError) when joining is closed, when the class has its
        `max_students`, or when the instructor removed them. Joins of one class are serialised (the
        class row is locked; on SQLite the write lock is taken at BEGIN), so the cap holds under a flood.
        """
        with self._tx(write_lock=True) as tx:
            stored = tx.execute(select(classes).where(classes.c.id == class_id).with_for_update()).first()
            member = tx.execute(
                select(rounds.c.key, class_rounds.c.removed).join(class_rounds, class_rounds.c.round_id == rounds.c.id)
                .where(class_rounds.c.class_id == class_id, class_rounds.c.learner_id == learner_id)
            ).first()
            if member is not None:
                if member.removed is not None:
                    raise UserInputError(REMOVED_MESSAGE)
                return member.key
            if stored.joining_closed is not None:
                raise UserInputError("Joining this class round is closed. If you should be in it, ask your instructor.")
            joined = tx.execute(select(func.count()).select_from(class_rounds).where(
                class_rounds.c.class_id == class_id, class_rounds.c.removed.is_(None))).scalar_one()
            if joined >= stored.max_students:
                raise UserInputError(f"This class round is full ({stored.max_students} students). "
                                     "If you should be in it, ask your instructor.")
            self._refuse_a_taken_name(tx, class_id, learner_id)
            key = secrets.token_urlsafe(9)
            round_id = tx.execute(insert(rounds).values(
                key=key, learner_id=learner_id, spec=json.dumps(spec), item_ids=json.dumps(item_ids), created=now(),
            )).inserted_primary_key[0]
            tx.execute(insert(class_rounds).values(class_id=class_id, round_id=round_id, learner_id=learner_id))
        return key

    @staticmethod
    def _refuse_a_taken_name(tx: Connection, class_id: int, learner_id: int) -> None:
        """A second "Ada" in one class is most often Ada again, in another browser: joining anew would give
        her a fresh round at 0 and the dashboard two rows. Her own link brings her round back instead."""
        name = tx.execute(select(learners.c.name).where(learners.c.id == learner_id)).scalar_one()
        members = tx.execute(
            select(learners.c.name).select_from(class_rounds.join(learners, learners.c.id == class_rounds.c.learner_id))
            .where(class_rounds.c.class_id == class_id, class_rounds.c.removed.is_(None))).scalars()
        if any(member.casefold() == name.casefold() for member in members):  # in Python: SQL lower() is ASCII-only
            raise UserInputError(
                f"A student called “{name}” has already joined this class round. If that is you, open the link "
                "to your round that you saved (it brings your answers back, in any browser). If not, join "
                "under a name your instructor can tell apart (add an initial, for example).")

    def membership(self, round_id: int) -> Membership | None:
        """The class of a class round (None for a learner's own round), with the student's removal."""
        with self._tx() as tx:
            row = tx.execute(
                select(classes, class_rounds.c.removed.label("member_removed"))
                .join(class_rounds, class_rounds.c.class_id == classes.c.id).where(class_rounds.c.round_id == round_id)
            ).first()
        return Membership(_stored_class(row), row.member_removed) if row else None

    def start_class(self, class_id: int) -> bool:
        """Let the students in: the time limit of everyone who was waiting counts from now. False: already started."""
        moment = now()
        with self._tx() as tx:
            started = tx.execute(update(classes).where(classes.c.id == class_id, classes.c.started.is_(None))
                                 .values(started=moment)).rowcount
            if started:
                waiting = select(class_rounds.c.round_id).where(class_rounds.c.class_id == class_id)
                tx.execute(update(rounds).where(rounds.c.id.in_(waiting), rounds.c.finished.is_(None))
                           .values(created=moment))
        return bool(started)

    def set_joining(self, class_id: int, open_: bool) -> None:
        with self._tx() as tx:
            tx.execute(update(classes).where(classes.c.id == class_id)
                       .values(joining_closed=None if open_ else now()))

    def remove_member(self, class_id: int, round_id: int) -> bool:
        """Take a student out of the class: out of the results and the CSV, their round closed, no rejoining."""
        moment = now()
        with self._tx() as tx:
            removed = tx.execute(update(class_rounds).where(
                class_rounds.c.class_id == class_id, class_rounds.c.round_id == round_id,
                class_rounds.c.removed.is_(None)).values(removed=moment)).rowcount
            if removed:
                tx.execute(update(rounds).where(rounds.c.id == round_id, rounds.c.finished.is_(None))
                           .values(finished=moment))
        return bool(removed)

    def class_members(self, class_id: int) -> list[ClassMember]:
        """Every student who joined and was not removed, in the order they joined."""
        with self._tx() as tx:
            rows = tx.execute(
                select(rounds, learners.c.name.label("learner_name"))
                .join(class_rounds, class_rounds.c.round_id == rounds.c.id)
                .join(learners, learners.c.id == rounds.c.learner_id)
                .where(class_rounds.c.class_id == class_id, class_rounds.c.removed.is_(None)).order_by(rounds.c.id)
            ).all()
        return [ClassMember(row.learner_id, row.learner_name, _stored_round(row)) for row in rows]

    def class_answers(self, class_id: int) -> dict[int, list[StoredAnswer]]:
        """Every answer of the class's (not removed) students, by round id (one query, for the live dashboard)."""
        with self._tx() as tx:
            rows = tx.execute(
                select(answers).join(class_rounds, class_rounds.c.round_id == answers.c.round_id)
                .where(class_rounds.c.class_id == class_id, class_rounds.c.removed.is_(None)).order_by(answers.c.id)
            ).all()
        by_round: dict[int, list[StoredAnswer]] = {}
        for row in rows:
            by_round.setdefault(row.round_id, []).append(_stored_answer(row))
        return by_round


# --- inside a transaction ------------------------------------------------------------------------
def _adopt_legacy(tx: Connection) -> set[str]:
    """A database of the numbered schema: record the migrations its version stood for."""
    if not tx.dialect.has_table(tx, "schema_version"):
        return set()
    version = tx.execute(select(func.max(schema_version.c.version))).scalar()  # racing old apps left duplicates
    if version is None:
        return set()
    if version not in LEGACY_VERSIONS:
        raise StorageUnavailable(f"The progress database is from a newer KQV Tutor (schema {version}); "
                                 "upgrade the app, or point it at another database.")
    for name in LEGACY_VERSIONS[version]:
        tx.execute(insert(migrations).values(name=name, applied=now()))
    return set(LEGACY_VERSIONS[version])


def _refuse_unknown(applied: set[str]) -> None:
    unknown = sorted(applied - {migration.name for migration in MIGRATIONS})
    if unknown:
        raise StorageUnavailable(f"The progress database is from a newer KQV Tutor (it has the migration "
                                 f"{unknown[-1]}, which this version does not know); upgrade the app, or point it "
                                 "at another database.")


def _insert_answer(tx: Connection, round_id: int, item_id: str, claim_id: str, response: str, correct: bool,
                   confidence: int, moment: datetime) -> bool:
    """Insert one answer; False when this round already has an answer to this item (and only then)."""
    try:
        with tx.begin_nested():  # a failed insert must not abort the whole transaction (PostgreSQL)
            tx.execute(insert(answers).values(
                round_id=round_id, item_id=item_id, claim_id=claim_id, response=response[:500],
                correct=int(correct), confidence=confidence, answered=moment,
            ))
    except IntegrityError:
        duplicate = select(answers.c.id).where(answers.c.round_id == round_id, answers.c.item_id == item_id)
        if tx.execute(duplicate).first() is None:
            raise  # some other constraint: not a repeat, so not to be reported as one
        return False
    return True


def _refuse_when_closed(tx: Connection, round_id: int) -> None:
    """Raise (rolling the transaction back) when this round takes no answers now."""
    state = tx.execute(
        select(rounds.c.finished, class_rounds.c.class_id, classes.c.started)
        .select_from(rounds.outerjoin(class_rounds, class_rounds.c.round_id == rounds.c.id)
                     .outerjoin(classes, classes.c.id == class_rounds.c.class_id))
        .where(rounds.c.id == round_id)
    ).one()
    if state.finished is not None:
        raise UserInputError("This round is closed, so this answer was not accepted. Your earlier answers are kept.")
    if state.class_id is not None and state.started is None:
        raise UserInputError("Your instructor has not started this class round yet, so this answer was not accepted.")


def _reschedule(tx: Connection, learner_id: int, claim_id: str, correct: bool, confidence: int,
                moment: datetime, reschedule: Reschedule) -> None:
    """Move the claim's review card by this answer.

    Two answers about one claim can arrive at once (its verdict and multiple-choice items, two tabs).
    The card is read and written under a row lock, and when the other answer created it in the meantime,
    it is read again (its insert is committed by then) and updated, never inserted twice.
    """
    card_of = (cards.c.learner_id == learner_id) & (cards.c.claim_id == claim_id)
    for _attempt in range(2):
        row = tx.execute(select(cards.c.box, cards.c.due).where(card_of).with_for_update()).first()
        card = reschedule(Card(claim_id, row.box, row.due) if row else None, claim_id, correct, confidence, moment)
        if row is not None:
            tx.execute(update(cards).where(card_of).values(box=card.box, due=card.due))
            return
        try:
            with tx.begin_nested():
                tx.execute(insert(cards).values(learner_id=learner_id, claim_id=claim_id, box=card.box, due=card.due))
            return
        except IntegrityError:
            continue  # created by the simultaneous answer: update it instead
    raise RuntimeError(f"review card {learner_id}/{claim_id} could be neither inserted nor found")


def _stored_round(row) -> StoredRound:
    return StoredRound(row.id, row.key, row.learner_id, json.loads(row.spec), json.loads(row.item_ids), row.finished,
                       row.created)


def _stored_answer(row) -> StoredAnswer:
    return StoredAnswer(row.item_id, row.claim_id, row.response, bool(row.correct), row.confidence, row.answered)


def _stored_class(row) -> StoredClass:
    return StoredClass(row.id, row.code, row.title, json.loads(row.spec), json.loads(row.item_ids), row.key_hash,
                       row.created, row.max_students, row.started, row.joining_closed)


def _sqlite_connect(connection, _record) -> None:
    # The driver's own transaction handling would not wrap DDL or let us BEGIN IMMEDIATE: we begin ourselves.
    connection.isolation_level = None
    cursor = connection.cursor()
    cursor.execute("PRAGMA busy_timeout=10000")  # first: the pragmas below may wait for another process
    cursor.execute("PRAGMA foreign_keys=ON")
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError:  # a read-only database keeps its journal mode; reads still work
        pass
    cursor.close()


def _sqlite_begin(connection) -> None:
    write_lock = connection.get_execution_options().get("sqlite_write_lock", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write_lock else "BEGIN")
