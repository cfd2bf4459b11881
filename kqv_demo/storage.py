"""Where learners' progress lives: SQLite by default, any SQLAlchemy URL via $DATABASE_URL.

Answers are written as they are given; an answer to the same item of the same round is
stored once (a double click or a replayed request changes nothing). The schema is small and
versioned: `migrate()` brings any older database up to date (1 -> 2 adds the class tables).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    Column, DateTime, Engine, ForeignKey, Integer, MetaData, String, Table, Text, UniqueConstraint,
    create_engine, event, insert, select, update,
)
from sqlalchemy.exc import IntegrityError

from kqv_demo import settings
from kqv_demo.errors import UserInputError
from kqv_demo.quiz.scheduling import Card, schedule

SCHEMA_VERSION = 2
MAX_NAME = 80

metadata = MetaData()
schema_version = Table("schema_version", metadata, Column("version", Integer, nullable=False))
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
    Column("created", DateTime, nullable=False),
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
# schema 2: class rounds (an instructor's round that every student of a class plays)
classes = Table(
    "classes", metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(16), unique=True, nullable=False),
    Column("title", String(200), nullable=False),
    Column("spec", Text, nullable=False),  # RoundSpec as JSON
    Column("item_ids", Text, nullable=False),  # the items every student gets, in order, as JSON
    Column("key_hash", String(200), nullable=False),  # the instructor key, salted and hashed
    Column("created", DateTime, nullable=False),
)
class_rounds = Table(
    "class_rounds", metadata,
    Column("class_id", ForeignKey("classes.id"), nullable=False, index=True),
    Column("round_id", ForeignKey("rounds.id"), primary_key=True),
    Column("learner_id", ForeignKey("learners.id"), nullable=False),
    UniqueConstraint("class_id", "learner_id"),  # one round per learner per class
)


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


@dataclass(frozen=True)
class ClassMember:
    """One student of a class: their profile and their round of the class."""

    learner_id: int
    name: str
    round: StoredRound


class Store:
    def __init__(self, url: str | None = None) -> None:
        url = url or database_url()
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(url)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.migrate()

    def migrate(self) -> None:
        metadata.create_all(self.engine)
        with self.engine.begin() as connection:
            version = connection.execute(select(schema_version.c.version)).scalar()
            if version is None:
                connection.execute(insert(schema_version).values(version=SCHEMA_VERSION))
            elif version > SCHEMA_VERSION:
                raise RuntimeError(f"The database is from a newer KQV Tutor (schema {version}); upgrade the app.")
            elif version < SCHEMA_VERSION:  # 1 -> 2 only added tables, which create_all made above
                connection.execute(update(schema_version).values(version=SCHEMA_VERSION))

    def schema_version(self) -> int:
        with self._tx() as tx:
            return tx.execute(select(schema_version.c.version)).scalar_one()

    @contextmanager
    def _tx(self) -> Iterator:
        with self.engine.begin() as connection:
            yield connection

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
            keys = tx.execute(select(rounds.c.key).where(rounds.c.learner_id == learner_id, rounds.c.finished.is_(None))
                              .order_by(rounds.c.id.desc())).scalars().all()
        return [self.round(key) for key in keys]

    def finish_round(self, round_id: int) -> None:
        with self._tx() as tx:
            tx.execute(update(rounds).where(rounds.c.id == round_id, rounds.c.finished.is_(None)).values(finished=now()))

    # answers --------------------------------------------------------------------------
    def record_answer(self, stored: StoredRound, item_id: str, claim_id: str, response: str, correct: bool,
                      confidence: int) -> bool:
        """Store an answer and reschedule its claim; False (and nothing changed) if already answered."""
        if item_id not in stored.item_ids:
            raise UserInputError(f"{item_id!r} is not part of this round.")
        moment = now()
        try:
            with self._tx() as tx:
                tx.execute(insert(answers).values(
                    round_id=stored.id, item_id=item_id, claim_id=claim_id, response=response[:500],
                    correct=int(correct), confidence=confidence, answered=moment,
                ))
                self._reschedule(tx, stored.learner_id, claim_id, correct, confidence, moment)
        except IntegrityError:
            return False
        return True

    def answers(self, round_id: int) -> list[StoredAnswer]:
        with self._tx() as tx:
            rows = tx.execute(select(answers).where(answers.c.round_id == round_id).order_by(answers.c.id)).all()
        return [_stored_answer(r) for r in rows]

    # review cards ---------------------------------------------------------------------
    def _reschedule(self, tx, learner_id: int, claim_id: str, correct: bool, confidence: int, moment: datetime) -> None:
        row = tx.execute(select(cards).where(cards.c.learner_id == learner_id, cards.c.claim_id == claim_id)).first()
        card = schedule(Card(claim_id, row.box, row.due) if row else None, claim_id, correct, confidence, moment)
        if row:
            tx.execute(update(cards).where(cards.c.learner_id == learner_id, cards.c.claim_id == claim_id)
                       .values(box=card.box, due=card.due))
        else:
            tx.execute(insert(cards).values(learner_id=learner_id, claim_id=claim_id, box=card.box, due=card.due))

    def cards(self, learner_id: int) -> list[Card]:
        with self._tx() as tx:
            rows = tx.execute(select(cards).where(cards.c.learner_id == learner_id)).all()
        return [Card(r.claim_id, r.box, r.due) for r in rows]


    # classes --------------------------------------------------------------------------
    def create_class(self, code: str, title: str, spec: dict, item_ids: list[str], key_hash: str) -> bool:
        """Store a class round; False (nothing stored) when `code` is already taken."""
        try:
            with self._tx() as tx:
                tx.execute(insert(classes).values(code=code, title=title[:200], spec=json.dumps(spec),
                                                  item_ids=json.dumps(item_ids), key_hash=key_hash, created=now()))
        except IntegrityError:
            return False
        return True

    def class_by_code(self, code: str) -> StoredClass | None:
        with self._tx() as tx:
            row = tx.execute(select(classes).where(classes.c.code == code)).first()
        if row is None:
            return None
        return StoredClass(row.id, row.code, row.title, json.loads(row.spec), json.loads(row.item_ids), row.key_hash,
                           row.created)

    def join_class(self, class_id: int, learner_id: int, spec: dict, item_ids: list[str]) -> str:
        """The learner's round of this class: created on the first visit, the same round ever after."""
        existing = self.class_round_key(class_id, learner_id)
        if existing is not None:
            return existing
        key = secrets.token_urlsafe(9)
        try:
            with self._tx() as tx:
                round_id = tx.execute(insert(rounds).values(
                    key=key, learner_id=learner_id, spec=json.dumps(spec), item_ids=json.dumps(item_ids),
                    created=now(),
                )).inserted_primary_key[0]
                tx.execute(insert(class_rounds).values(class_id=class_id, round_id=round_id, learner_id=learner_id))
        except IntegrityError:  # the same learner joined twice at the same moment: the first one wins
            return self.class_round_key(class_id, learner_id)
        return key

    def class_round_key(self, class_id: int, learner_id: int) -> str | None:
        with self._tx() as tx:
            return tx.execute(
                select(rounds.c.key).join(class_rounds, class_rounds.c.round_id == rounds.c.id)
                .where(class_rounds.c.class_id == class_id, class_rounds.c.learner_id == learner_id)
            ).scalar()

    def class_of_round(self, round_id: int) -> int | None:
        with self._tx() as tx:
            return tx.execute(select(class_rounds.c.class_id).where(class_rounds.c.round_id == round_id)).scalar()

    def class_members(self, class_id: int) -> list[ClassMember]:
        """Every student who joined, in the order they joined."""
        with self._tx() as tx:
            rows = tx.execute(
                select(rounds, learners.c.name.label("learner_name"))
                .join(class_rounds, class_rounds.c.round_id == rounds.c.id)
                .join(learners, learners.c.id == rounds.c.learner_id)
                .where(class_rounds.c.class_id == class_id).order_by(rounds.c.id)
            ).all()
        return [ClassMember(row.learner_id, row.learner_name, _stored_round(row)) for row in rows]

    def class_answers(self, class_id: int) -> dict[int, list[StoredAnswer]]:
        """Every answer given in this class, by round id (one query, for the live dashboard)."""
        with self._tx() as tx:
            rows = tx.execute(
                select(answers).join(class_rounds, class_rounds.c.round_id == answers.c.round_id)
                .where(class_rounds.c.class_id == class_id).order_by(answers.c.id)
            ).all()
        by_round: dict[int, list[StoredAnswer]] = {}
        for row in rows:
            by_round.setdefault(row.round_id, []).append(_stored_answer(row))
        return by_round


def _stored_round(row) -> StoredRound:
    return StoredRound(row.id, row.key, row.learner_id, json.loads(row.spec), json.loads(row.item_ids), row.finished,
                       row.created)


def _stored_answer(row) -> StoredAnswer:
    return StoredAnswer(row.item_id, row.claim_id, row.response, bool(row.correct), row.confidence, row.answered)


def _sqlite_pragmas(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
