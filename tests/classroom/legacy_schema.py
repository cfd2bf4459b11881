"""A database as KQV Tutor's schema version 2 wrote it (storage.py at commit c88a4f9), on any dialect.

The tables are that code's definitions, copied; the rows are what it stored for one class round with
one student and one answer. `schema_version` holds two rows of 2: what several app processes starting
at once left behind before named migrations (the race this replaced).
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import (
    Column, DateTime, ForeignKey, Integer, MetaData, String, Table, Text, UniqueConstraint, create_engine, insert,
)

CLASS_CODE = "K7PQX4MRT"
LEARNER_KEY = "oldBo-key-0000000"
ROUND_KEY = "oldBoRound01"
ITEMS = ["kl-divergence-compares-queries-and-keys:verdict", "softmax-turns-scores-into-attention-distribution:verdict"]
SPEC = {"id": "class", "title": "Before the upgrade", "description": "", "topics": [], "verdicts": [],
        "kinds": ["verdict"], "claims": [item.split(":")[0] for item in ITEMS], "core_only": False, "count": 2,
        "seed": 0, "order": "bank", "time_limit_minutes": None, "feedback": "end"}
WHEN = datetime(2026, 12, 1, 9, 30)

v2 = MetaData()
schema_version = Table("schema_version", v2, Column("version", Integer, nullable=False))
learners = Table(
    "learners", v2,
    Column("id", Integer, primary_key=True),
    Column("key", String(64), unique=True, nullable=False),
    Column("name", String(80), nullable=False),
    Column("created", DateTime, nullable=False),
)
rounds = Table(
    "rounds", v2,
    Column("id", Integer, primary_key=True),
    Column("key", String(64), unique=True, nullable=False),
    Column("learner_id", ForeignKey("learners.id"), nullable=False, index=True),
    Column("spec", Text, nullable=False),
    Column("item_ids", Text, nullable=False),
    Column("created", DateTime, nullable=False),
    Column("finished", DateTime),
)
answers = Table(
    "answers", v2,
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
    "cards", v2,
    Column("learner_id", ForeignKey("learners.id"), primary_key=True),
    Column("claim_id", String(100), primary_key=True),
    Column("box", Integer, nullable=False),
    Column("due", DateTime, nullable=False),
)
classes = Table(
    "classes", v2,
    Column("id", Integer, primary_key=True),
    Column("code", String(16), unique=True, nullable=False),
    Column("title", String(200), nullable=False),
    Column("spec", Text, nullable=False),
    Column("item_ids", Text, nullable=False),
    Column("key_hash", String(200), nullable=False),
    Column("created", DateTime, nullable=False),
)
class_rounds = Table(
    "class_rounds", v2,
    Column("class_id", ForeignKey("classes.id"), nullable=False, index=True),
    Column("round_id", ForeignKey("rounds.id"), primary_key=True),
    Column("learner_id", ForeignKey("learners.id"), nullable=False),
    UniqueConstraint("class_id", "learner_id"),
)


def write_v2_database(url: str) -> None:
    engine = create_engine(url)
    v2.create_all(engine)
    with engine.begin() as tx:
        tx.execute(insert(schema_version), [{"version": 2}, {"version": 2}])
        learner_id = tx.execute(insert(learners).values(key=LEARNER_KEY, name="Old Bo", created=WHEN)
                                ).inserted_primary_key[0]
        class_id = tx.execute(insert(classes).values(
            code=CLASS_CODE, title=SPEC["title"], spec=json.dumps(SPEC), item_ids=json.dumps(ITEMS),
            key_hash="pbkdf2_sha256$200000$00$00", created=WHEN)).inserted_primary_key[0]
        round_id = tx.execute(insert(rounds).values(
            key=ROUND_KEY, learner_id=learner_id, spec=json.dumps({**SPEC, "item_ids": ITEMS}),
            item_ids=json.dumps(ITEMS), created=WHEN)).inserted_primary_key[0]
        tx.execute(insert(class_rounds).values(class_id=class_id, round_id=round_id, learner_id=learner_id))
        tx.execute(insert(answers).values(round_id=round_id, item_id=ITEMS[0], claim_id=SPEC["claims"][0],
                                          response="false", correct=1, confidence=3, answered=WHEN))
        tx.execute(insert(cards).values(learner_id=learner_id, claim_id=SPEC["claims"][0], box=2, due=WHEN))
    engine.dispose()
