"""Exports of a round for teachers: a printable handout (HTML, PDF), Moodle XML, GIFT and an Anki deck.

Each format is a pure function of (bank, spec, items, live); `write_export` runs the real models
when the format needs them (figures, or prediction items whose answer is what the model does),
then writes the file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kqv_demo.content.loader import Bank
from kqv_demo.errors import UserInputError
from kqv_demo.exports.live import Live, Progress, run_live, runs_to_compute
from kqv_demo.quiz.items import Item
from kqv_demo.quiz.rounds import RoundSpec


@dataclass(frozen=True)
class Format:
    name: str
    label: str
    suffix: str
    mime: str
    figures: bool  # runs every demo for its figures
    build: Callable[[Bank, RoundSpec, list[Item], Live | None], str | bytes]
    help: str  # where the file goes and what it holds: the Export panel and `export --help` show it


def _html(bank: Bank, spec: RoundSpec, items: list[Item], live: Live | None) -> str:
    from kqv_demo.exports.html_handout import handout_html

    return handout_html(bank, spec, items, live or Live())


def _pdf(bank: Bank, spec: RoundSpec, items: list[Item], live: Live | None) -> bytes:
    from kqv_demo.exports.pdf_handout import handout_pdf

    return handout_pdf(bank, spec, items, live or Live())


def _moodle(bank: Bank, spec: RoundSpec, items: list[Item], live: Live | None) -> str:
    from kqv_demo.exports.moodle import moodle_xml

    return moodle_xml(bank, spec, items, live)


def _gift(bank: Bank, spec: RoundSpec, items: list[Item], live: Live | None) -> str:
    from kqv_demo.exports.gift import gift

    return gift(bank, spec, items, live)


def _anki(bank: Bank, spec: RoundSpec, items: list[Item], live: Live | None) -> bytes:
    from kqv_demo.exports.anki import anki_deck

    return anki_deck(bank, spec, items, live)


FORMATS: dict[str, Format] = {
    "html": Format("html", "Handout (HTML, print from the browser)", "-handout.html", "text/html", True, _html,
                   "One self-contained page: open it in a browser and print (the answer key starts on a new page)."),
    "pdf": Format("pdf", "Handout (PDF)", "-handout.pdf", "application/pdf", True, _pdf,
                  "The same handout as a PDF, ready to print."),
    "moodle": Format("moodle", "Moodle XML", "-moodle.xml", "application/xml", False, _moodle,
                     "Question bank → Import → Moodle XML format. True/false, multiple choice and numerical "
                     "questions."),
    "gift": Format("gift", "GIFT (Moodle)", ".gift.txt", "text/plain", False, _gift,
                   "Question bank → Import → GIFT format. The same questions as the Moodle XML file."),
    "anki": Format("anki", "Anki deck (.apkg, with figures)", ".apkg", "application/octet-stream", True, _anki,
                   "Anki: File → Import. Importing a newer export updates the same cards."),
}


def get_format(name: str) -> Format:
    fmt = FORMATS.get(name)
    if fmt is None:
        raise UserInputError(f"Unknown export format {name!r}. Choose one of: {', '.join(FORMATS)}.")
    return fmt


def file_name(spec: RoundSpec, fmt: str) -> str:
    """A download name that says what the file is: core-10-handout.pdf, core-10.apkg."""
    return spec.id + get_format(fmt).suffix


def needs_model(fmt: Format, items: list[Item]) -> bool:
    return fmt.figures or any(item.kind == "predict" for item in items)


def model_runs_needed(bank: Bank, items: list[Item], fmt: str, runtime: Any) -> int:
    """How many demo runs building `fmt` would compute now: 0 when the format needs no model or when
    every run it needs is already cached (see exports.live.RUNS)."""
    chosen = get_format(fmt)
    if not needs_model(chosen, items):
        return 0
    return runs_to_compute(bank, items, runtime, figures=chosen.figures)


def build_export(bank: Bank, spec: RoundSpec, items: list[Item], fmt: str, runtime: Any = None,
                 progress: Progress = lambda message: None) -> str | bytes:
    """The export's content. `runtime` is loaded on demand when the format needs the models."""
    chosen = get_format(fmt)
    if not items:
        raise UserInputError(f"The round {spec.title!r} has no questions to export.")
    live = None
    if needs_model(chosen, items):
        if runtime is None:
            progress("loading the models")
            from kqv_demo.runtime import shared_runtime

            runtime = shared_runtime()
        live = run_live(bank, items, runtime, progress, figures=chosen.figures)
    return chosen.build(bank, spec, items, live)


def check_writable(path: Path) -> None:
    """Fail before the slow part if the file cannot be written."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UserInputError(f"{path} is a folder; give a file name, e.g. {path / 'round'}.")
    if not folder.is_dir():
        raise UserInputError(f"Cannot write {path}: the folder {folder} does not exist.")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UserInputError(f"Cannot write {path}: permission denied.")


def write_export(bank: Bank, spec: RoundSpec, items: list[Item], fmt: str, path: str | Path,
                 progress: Progress = lambda message: None, runtime: Any = None) -> Path:
    """Build the export and write it to `path`. Returns the path written."""
    target = Path(path)
    get_format(fmt)
    check_writable(target)
    content = build_export(bank, spec, items, fmt, runtime, progress)
    data = content.encode("utf-8") if isinstance(content, str) else content
    try:
        target.write_bytes(data)
    except OSError as error:
        raise UserInputError(f"Cannot write {target}: {error.strerror or error}.") from None
    return target
