"""Mutated YAML files through the app's own code paths: no crash, no traceback, every error with a line.

    from kqv_demo.stress.yaml_fuzz import run
    run(count=1000, seed=0)   # {"files": 1000, "crashes": 0, "tracebacks": 0, "errors_without_line": 0, ...}

Each of `count` mutations takes a real file (a claim file from content/claims or content/topics.yaml, a
round file from content/rounds, or an upload made of those and of a class round's item ids), changes it
deterministically (from `seed` and its number) in one of the ways in MUTATIONS, and runs it where the
app would: the claim bank loaded from a temporary copy of the content folder with the mutated file in
place (`load_bank`), the round files folder (`load_round_files`), or the Instructor page's upload
(`parse_round_upload`). Counted per file:

- crashes: an exception escaped;
- tracebacks: a bug caught at the file boundary (an "(internal)" error, logged with its traceback) or a
  message quoting a traceback;
- errors_without_line: an error without `file:line` of the mutated file (or, for the bank and the round
  folder, an error in a file that was not mutated);
- other_files_lost: claims or round files that were not mutated but were no longer served;
- inconsistent: a round file or upload both accepted and reported, or neither.

Times are per file, through the whole call: for the bank that is a reload of every claim file, as the
app does when content changes (`bank_baseline_seconds` is the same reload without a mutation). Seconds
are wall-clock; the `cpu_` figures count this process's CPU only, steadier on a shared machine.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from kqv_demo.content.loader import Bank, content_dir, load_bank, load_dialogue
from kqv_demo.content.yamlfile import INTERNAL, ContentError, shown_path
from kqv_demo.quiz.items import items_for_claim
from kqv_demo.quiz.round_files import load_round_files, parse_round_upload
from kqv_demo.stats import percentile

TARGETS = ("bank", "round file", "upload")
Mutation = Callable[[bytes, random.Random], bytes]


# --- mutations: each takes the file's bytes and a seeded generator, returns new bytes -------------------


def flip_bytes(data: bytes, rng: random.Random) -> bytes:
    changed = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        changed[rng.randrange(len(changed))] ^= rng.randrange(1, 256)
    return bytes(changed)


def delete_span(data: bytes, rng: random.Random) -> bytes:
    start = rng.randrange(len(data))
    return data[:start] + data[start + rng.randint(1, 200):]


def duplicate_lines(data: bytes, rng: random.Random) -> bytes:
    lines = data.splitlines(keepends=True)
    start = rng.randrange(len(lines))
    block = lines[start:start + rng.randint(1, 20)]
    return b"".join(lines[:start] + block * rng.choice((1, 1, 2, 50)) + lines[start:])


def alias_bomb(data: bytes, rng: random.Random) -> bytes:
    """The review's attack: levels of 9 aliases each (8 levels in 430 bytes took 19 s and 2.8 GB)."""
    levels = rng.randint(6, 10)
    lines = ["bomb0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"bomb{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]" for level in range(1, levels)]
    bomb = ("\n".join(lines) + "\n").encode()
    return data + bomb if rng.random() < 0.7 else bomb + data


def deep_nesting(data: bytes, rng: random.Random) -> bytes:
    depth = rng.choice((51, 200, 5000, 30000))
    if rng.random() < 0.5:
        nested = b"deep: " + b"[" * depth + b"]" * depth + b"\n"
    else:
        nested = b"".join(b"  " * level + b"k%d:\n" % level for level in range(min(depth, 3000)))
    return _insert_at_line(data, nested, rng)


def huge_int(data: bytes, rng: random.Random) -> bytes:
    digits = rng.choice((101, 4301, 5000, 60000))
    number = (b"0x" + b"f" * digits) if rng.random() < 0.2 else b"9" * digits
    numbers = list(re.finditer(rb"(?<=: )\d+\b", data))
    if not numbers:
        return data + b"count: " + number + b"\n"
    chosen = rng.choice(numbers)
    return data[:chosen.start()] + number + data[chosen.end():]


def tabs(data: bytes, rng: random.Random) -> bytes:
    lines = data.splitlines(keepends=True)
    for _ in range(rng.randint(1, 3)):
        index = rng.randrange(len(lines))
        indented = lines[index].startswith(b" ")
        lines[index] = re.sub(rb"^ +", b"\t", lines[index]) if indented else b"\t" + lines[index]
    return b"".join(lines)


def byte_order_marks(data: bytes, rng: random.Random) -> bytes:
    choice = rng.randrange(3)
    if choice == 0:
        return b"\xef\xbb\xbf" + data
    if choice == 1:
        position = rng.randrange(len(data))
        return data[:position] + b"\xef\xbb\xbf" + data[position:]
    return data.decode("utf-8", "replace").encode("utf-16")  # a BOM and UTF-16: not UTF-8 at all


def invalid_utf8(data: bytes, rng: random.Random) -> bytes:
    position = rng.randrange(len(data))
    bad = rng.choice((b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80", b"\xe2\x82"))
    return data[:position] + bad + data[position:]


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[:rng.randrange(len(data))]


def control_characters(data: bytes, rng: random.Random) -> bytes:
    position = rng.randrange(len(data))
    character = rng.choice(("\x00", "\x07", "\x1b", "\u202e", "\x85", "\u2028", "\ufffe"))
    return data[:position] + character.encode("utf-8", "surrogatepass") + data[position:]


HOSTILE_LINES = (
    b"x: !!python/object/apply:os.system ['echo owned']\n",
    b"x: !!binary '@@not base64@@'\n",
    b"x: !!timestamp 2024-13-45\n",
    b"x: 2024-02-30\n",
    b"x: !!bool maybe\n",
    b"x: !!int twelve\n",
    b"x: !!float many\n",
    b"x: !!set {a, b}\n",
    b"x: !!omap [a]\n",
    b"<<: [1, 2]\n",
    b"<<: {id: merged}\n",
    b"? [complex, key]\n: value\n",
    b"---\nsecond: document\n",
    b"%YAML 1.1\n---\n",
    b"x: &anchor value\n",
    b"x: *nowhere\n",
    b"1.5: float key\n",
    b"2024-01-01: date key\n",
    b"x: 1:2:3:4:5:6:7:8:9:10:11:12:13:14:15:16:17:18:19:20:21:22:23:24:25:26:27:28:29:30:31:32:33\n",
    b"x: .inf\n",
    b"x: " + b"a" * 5000 + b": b\n",
    b"id: " + b"\xe2\x80\xae" * 200 + b"\n",
)


def hostile_yaml(data: bytes, rng: random.Random) -> bytes:
    return _insert_at_line(data, rng.choice(HOSTILE_LINES), rng)


def many_unknown_ids(data: bytes, rng: random.Random) -> bytes:
    """The review's CPU attack: thousands of near-miss ids, each once cost a "did you mean" over all."""
    count = rng.choice((30, 500, 2500))
    field_name = rng.choice((b"item_ids", b"claims"))
    ids = b"".join(b"  - kl-divergence-compares-queries-and-keyz-%d:verdict\n" % number for number in range(count))
    return data + b"\n" + field_name + b":\n" + ids


def _insert_at_line(data: bytes, insert: bytes, rng: random.Random) -> bytes:
    lines = data.splitlines(keepends=True) or [b""]
    index = rng.randrange(len(lines) + 1)
    return b"".join(lines[:index] + [insert] + lines[index:])


MUTATIONS: dict[str, Mutation] = {
    "byte flips": flip_bytes, "deletion": delete_span, "duplicated lines": duplicate_lines,
    "alias bomb": alias_bomb, "deep nesting": deep_nesting, "huge integer": huge_int, "tabs": tabs,
    "byte order marks": byte_order_marks, "invalid UTF-8": invalid_utf8, "truncation": truncate,
    "control characters": control_characters, "hostile YAML": hostile_yaml, "many unknown ids": many_unknown_ids,
}


# --- running ---------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    target: str
    mutation: str
    source: str
    seconds: float
    cpu_seconds: float = 0.0
    input_sha256: str = ""
    errors: list[ContentError] = field(default_factory=list)
    crash: str | None = None
    traceback: bool = False
    errors_without_line: int = 0
    other_files_lost: int = 0
    inconsistent: bool = False


class _LoggedTracebacks(logging.Handler):
    """Counts log records that carry a traceback (what a caught bug writes to the server log)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += record.exc_info is not None


class _Sandbox:
    """A temporary copy of the content folder, the pristine bytes of each file and the unmutated results."""

    def __init__(self, folder: Path, source: Path) -> None:
        self.root = folder / "content"
        shutil.copytree(source / "claims", self.root / "claims")
        shutil.copytree(source / "rounds", self.root / "rounds")
        shutil.copy(source / "topics.yaml", self.root / "topics.yaml")
        self.dialogue = load_dialogue()
        self.claim_files = sorted((self.root / "claims").glob("*.y*ml"))
        self.round_files = sorted((self.root / "rounds").glob("*.y*ml"))
        self.pristine = {file: file.read_bytes() for file in [*self.claim_files, *self.round_files,
                                                               self.root / "topics.yaml"]}
        load_bank(self.root, dialogue=self.dialogue)  # the first load also imports the demos (torch)
        started = time.perf_counter()
        self.bank = load_bank(self.root, dialogue=self.dialogue)
        self.bank_baseline_seconds = time.perf_counter() - started
        if self.bank.errors:
            raise RuntimeError("the content folder has errors before any mutation: " + str(self.bank.errors[0]))
        self.claim_of_file = {path.name: claim_id for claim_id, path in self.bank.claim_files.items()}
        self.rounds = load_round_files(self.bank, self.root / "rounds")
        self.uploads = {file.name: self.pristine[file] for file in self.round_files}
        self.uploads["class-round.yaml"] = _class_round_upload(self.bank)


def _class_round_upload(bank: Bank) -> bytes:
    """What a class round's fixed item list looks like as a file."""
    item_ids = [item.id for claim in list(bank.claims.values())[:15] for item in items_for_claim(claim)]
    lines = ["id: class-upload", "title: A class round", "item_ids:", *(f"  - {item}" for item in item_ids)]
    return ("\n".join(lines) + "\n").encode()


def _check_errors(errors: list[ContentError], file_shown: str, outcome: Outcome) -> None:
    for error in errors:
        if error.field == INTERNAL or "Traceback" in error.message:
            outcome.traceback = True
        located = str(error).startswith(f"{file_shown}:{error.line}: ")
        if error.line < 1 or shown_path(error.file) != file_shown or not located:
            outcome.errors_without_line += 1


@contextmanager
def _timed(outcome: Outcome) -> Iterator[None]:
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        outcome.seconds, outcome.cpu_seconds = time.perf_counter() - wall, time.process_time() - cpu


def _mutated(data: bytes, rng: random.Random, mutate: Mutation, outcome: Outcome) -> bytes:
    changed = mutate(data, rng)
    outcome.input_sha256 = hashlib.sha256(changed).hexdigest()
    return changed


def _run_bank(sandbox: _Sandbox, rng: random.Random, mutate: Mutation, outcome: Outcome) -> None:
    topics = sandbox.root / "topics.yaml"
    file = topics if rng.random() < 0.1 else rng.choice(sandbox.claim_files)
    outcome.source = f"content/{file.parent.name}/{file.name}" if file != topics else "content/topics.yaml"
    file.write_bytes(_mutated(sandbox.pristine[file], rng, mutate, outcome))
    try:
        with _timed(outcome):
            bank = load_bank(sandbox.root, dialogue=sandbox.dialogue)
    finally:
        file.write_bytes(sandbox.pristine[file])
    outcome.errors = bank.errors
    _check_errors(bank.errors, shown_path(file), outcome)
    mutated_claim = sandbox.claim_of_file.get(file.name)
    outcome.other_files_lost = sum(claim_id not in bank.claims for claim_id in sandbox.bank.claims
                                   if claim_id != mutated_claim)


def _run_round_file(sandbox: _Sandbox, rng: random.Random, mutate: Mutation, outcome: Outcome) -> None:
    file = rng.choice(sandbox.round_files)
    outcome.source = f"content/rounds/{file.name}"
    file.write_bytes(_mutated(sandbox.pristine[file], rng, mutate, outcome))
    try:
        with _timed(outcome):
            rounds = load_round_files(sandbox.bank, sandbox.root / "rounds")
    finally:
        file.write_bytes(sandbox.pristine[file])
    outcome.errors = rounds.errors
    _check_errors(rounds.errors, shown_path(file), outcome)
    others = {spec_id for spec_id, path in sandbox.rounds.files.items() if path != file}
    outcome.other_files_lost = len(others - set(rounds.specs))
    served = any(path == file for path in rounds.files.values())
    outcome.inconsistent = served == bool(rounds.errors)


def _run_upload(sandbox: _Sandbox, rng: random.Random, mutate: Mutation, outcome: Outcome) -> None:
    name = rng.choice(sorted(sandbox.uploads))
    outcome.source = f"upload {name}"
    data = _mutated(sandbox.uploads[name], rng, mutate, outcome)
    with _timed(outcome):
        spec, errors = parse_round_upload(sandbox.bank, name, data)
    outcome.errors = errors
    _check_errors(errors, shown_path(Path(name)), outcome)
    outcome.inconsistent = (spec is None) != bool(errors)


RUNNERS = {"bank": _run_bank, "round file": _run_round_file, "upload": _run_upload}


def run(count: int = 1000, seed: int = 0) -> dict:
    """Mutate `count` files (deterministically from `seed`) and run each through the app's code paths."""
    names = list(MUTATIONS)
    logged = _LoggedTracebacks()
    logger = logging.getLogger("kqv_demo")
    logger.addHandler(logged)
    outcomes: list[Outcome] = []
    try:
        with tempfile.TemporaryDirectory(prefix="kqv-yaml-fuzz-") as folder:
            sandbox = _Sandbox(Path(folder), content_dir())
            for number in range(count):
                rng = random.Random(f"{seed}:{number}")
                target, mutation = TARGETS[number % len(TARGETS)], names[(number // len(TARGETS)) % len(names)]
                outcome = Outcome(target, mutation, source="", seconds=0.0)
                logged_before = logged.count
                try:
                    RUNNERS[target](sandbox, rng, MUTATIONS[mutation], outcome)
                except Exception as error:  # the point of the exercise: count anything that escapes
                    outcome.crash = f"{type(error).__name__}: {str(error)[:200]}"
                outcome.traceback = outcome.traceback or logged.count > logged_before
                outcomes.append(outcome)
            baseline = sandbox.bank_baseline_seconds
    finally:
        logger.removeHandler(logged)
    return _summary(outcomes, baseline)


def _summary(outcomes: list[Outcome], bank_baseline_seconds: float) -> dict:
    seconds = [outcome.seconds for outcome in outcomes]
    cpu_seconds = [outcome.cpu_seconds for outcome in outcomes]
    problems = [outcome for outcome in outcomes
                if outcome.crash or outcome.traceback or outcome.errors_without_line or outcome.other_files_lost
                or outcome.inconsistent]
    return {
        "files": len(outcomes),
        "crashes": sum(outcome.crash is not None for outcome in outcomes),
        "tracebacks": sum(outcome.traceback for outcome in outcomes),
        "errors_without_line": sum(outcome.errors_without_line for outcome in outcomes),
        "max_seconds_per_file": round(max(seconds, default=0.0), 4),
        "p95_seconds_per_file": round(percentile(seconds, 0.95), 4),
        "max_cpu_seconds_per_file": round(max(cpu_seconds, default=0.0), 4),
        "p95_cpu_seconds_per_file": round(percentile(cpu_seconds, 0.95), 4),
        "other_files_lost": sum(outcome.other_files_lost for outcome in outcomes),
        "inconsistent": sum(outcome.inconsistent for outcome in outcomes),
        "files_with_errors": sum(bool(outcome.errors) for outcome in outcomes),
        "errors_reported": sum(len(outcome.errors) for outcome in outcomes),
        "bank_baseline_seconds": round(bank_baseline_seconds, 4),
        "inputs_sha256": hashlib.sha256(" ".join(f"{o.target}:{o.source}:{o.input_sha256}" for o in outcomes)
                                        .encode()).hexdigest(),  # the same for the same count and seed
        "by_target": {target: _target_summary([o for o in outcomes if o.target == target]) for target in TARGETS},
        "by_mutation": {name: sum(outcome.mutation == name for outcome in outcomes) for name in MUTATIONS},
        "problems": [_described(outcome) for outcome in problems[:10]],
    }


def _target_summary(outcomes: list[Outcome]) -> dict:
    times, cpu_times = [o.seconds for o in outcomes], [o.cpu_seconds for o in outcomes]
    return {
        "files": len(outcomes),
        "p95_seconds": round(percentile(times, 0.95), 4),
        "max_seconds": round(max(times, default=0.0), 4),
        "p95_cpu_seconds": round(percentile(cpu_times, 0.95), 4),
        "max_cpu_seconds": round(max(cpu_times, default=0.0), 4),
        "slowest": _described(max(outcomes, key=lambda o: o.cpu_seconds)) if outcomes else None,
    }


def _described(outcome: Outcome) -> dict:
    return {
        "target": outcome.target, "mutation": outcome.mutation, "source": outcome.source,
        "seconds": round(outcome.seconds, 4), "cpu_seconds": round(outcome.cpu_seconds, 4),
        "crash": outcome.crash, "traceback": outcome.traceback,
        "errors_without_line": outcome.errors_without_line, "other_files_lost": outcome.other_files_lost,
        "first_error": str(outcome.errors[0]) if outcome.errors else None,
    }


if __name__ == "__main__":  # python -m kqv_demo.stress.yaml_fuzz [COUNT [SEED]]
    arguments = [int(argument) for argument in sys.argv[1:3]]
    print(json.dumps(run(*arguments), indent=2, ensure_ascii=False))
