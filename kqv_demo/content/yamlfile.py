"""YAML files validated against pydantic models, with every problem reported as `file:line: field: message`.

Shared by the claim bank (content/claims, content/topics.yaml) and round files (content/rounds, uploads).
These files come from people, some of them hostile (an upload needs no key), so reading one is bounded:
no anchors or aliases (a few hundred bytes of nested aliases expand to billions of values; no content
file needs them), at most MAX_NODES values nested at most MAX_DEPTH deep, numbers of at most
MAX_NUMBER_LENGTH characters, and every node is visited once. Whatever the bytes, the result is a
document or errors with a line, never an exception.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

YamlPath = tuple[str | int, ...]
INTERNAL = "(internal)"  # the field of an error that is a bug of ours, not of the file

MAX_NODES = 20_000  # the largest claim file has about 1,200; a 64 KB round file needs far fewer
MAX_DEPTH = 50  # levels of nested lists and mappings; content files use at most 5
MAX_NUMBER_LENGTH = 100  # characters of an integer; Python refuses to convert more than 4,300 digits
MAX_ERRORS = 20  # per file; more are counted, not listed (a person fixes the first ones first)
SHOWN_TEXT = 60  # characters of a value or key quoted back in a message


@dataclass(frozen=True)
class ContentError:
    file: Path
    line: int
    field: str
    message: str
    more: int = 0  # problems counted in this one line but not listed ("and N more problems"; see capped)

    def __str__(self) -> str:
        return f"{shown_path(self.file)}:{self.line}: {self.field}: {self.message}"


def shown_path(path: Path) -> str:
    """`path` relative to the working folder when it is inside it (shorter messages)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except (ValueError, OSError):
        return str(path)


def shown(value: Any) -> str:
    """`repr(value)`, cut to SHOWN_TEXT characters: a message quotes a value, it does not copy a file."""
    text = _safe_repr(value)
    return text if len(text) <= SHOWN_TEXT else text[: SHOWN_TEXT - 1] + "…"


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except ValueError:  # an int too long to print; the loader refuses them, pydantic may still make one
        return f"<{type(value).__name__}>"


class _LimitError(yaml.MarkedYAMLError):
    """A document beyond what these files may contain; `problem_mark` is where it goes too far."""

    def __init__(self, problem: str, mark: yaml.Mark) -> None:
        super().__init__(problem=problem, problem_mark=mark)


_NO_ALIASES = "anchors and aliases are not allowed in these files; write each value out in full"


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing aliases, too many nodes, deep nesting and huge numbers."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.node_count = 0
        self.depth = 0
        self.last_scalar: yaml.ScalarNode | None = None  # to see a runaway quote behind a later error

    def fetch_flow_collection_start(self, TokenClass) -> None:  # noqa: N803 (PyYAML's name)
        """Flow lists and mappings (`[[[...`) nested more than MAX_DEPTH deep are refused as the scanner
        opens them: PyYAML's scanner does work for every open flow level at every token, so 5,000 opening
        brackets cost half a second of CPU (holding the GIL) before the composer's depth check is reached.
        The scanner's own flow level counts, so brackets in quotes, comments and block text never do."""
        if self.flow_level >= MAX_DEPTH:
            raise _LimitError(f"lists and mappings nested more than {MAX_DEPTH} levels deep", self.get_mark())
        super().fetch_flow_collection_start(TokenClass)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise _LimitError(f"alias *{event.anchor}: {_NO_ALIASES}", event.start_mark)
        if event.anchor is not None:
            raise _LimitError(f"anchor &{event.anchor}: {_NO_ALIASES}", event.start_mark)
        self.node_count += 1
        if self.node_count > MAX_NODES:
            raise _LimitError(f"more than {MAX_NODES:,} values in one file (a quiz file needs far fewer)",
                              event.start_mark)
        nests = isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent))
        if nests and self.depth >= MAX_DEPTH:
            raise _LimitError(f"lists and mappings nested more than {MAX_DEPTH} levels deep", event.start_mark)
        self.depth += nests
        try:
            node = super().compose_node(parent, index)
        finally:
            self.depth -= nests
        if isinstance(node, yaml.ScalarNode):
            self.last_scalar = node
        return node

    def runaway_quote(self, error: yaml.MarkedYAMLError) -> yaml.MarkedYAMLError | None:
        """`error` blamed on the quote before it, when that quote ran on from an earlier line.

        `speaker: "Assistant` (no closing quote) swallows the lines below up to the next quote
        character; the parser only notices after it, lines later. The line to fix is where it opened.
        """
        quoted, mark = self.last_scalar, error.problem_mark
        if quoted is None or quoted.style not in ('"', "'") or mark is None:
            return None
        if quoted.start_mark.line == quoted.end_mark.line or quoted.end_mark.line != mark.line:
            return None
        return yaml.MarkedYAMLError(_RUNAWAY_QUOTE, quoted.start_mark, error.problem, mark)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        # PyYAML's constructors raise plain Python errors for some values (`!!int abc`, `!!bool maybe`,
        # a date like 2024-13-45); give them the node's line like any other YAML error.
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError, IndexError) as error:
            kind = str(node.tag).rsplit(":", 1)[-1]
            reason = f" ({error})" if isinstance(error, ValueError) else ""
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {shown(node.value)} as {kind}{reason}", node.start_mark) from None

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        text = self.construct_scalar(node)
        if len(text) > MAX_NUMBER_LENGTH:
            message = f"a number {len(text):,} characters long; at most {MAX_NUMBER_LENGTH} here"
            raise yaml.constructor.ConstructorError(None, None, message, node.start_mark)
        return super().construct_yaml_int(node)


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_yaml_int)


class YamlDocument:
    """A parsed YAML document and the line of every key and list item in it."""

    def __init__(self, file: Path, text: str) -> None:
        self.file = file
        self.lines: dict[YamlPath, int] = {(): 1}
        self.duplicates: list[ContentError] = []
        loader = _BoundedLoader(text)
        try:
            node = loader.get_single_node()
            self.data: Any = loader.construct_document(node) if node is not None else None
        except yaml.MarkedYAMLError as error:
            runaway = loader.runaway_quote(error)
            if runaway is None:
                raise
            raise runaway from error
        finally:
            loader.dispose()
        if node is not None:
            self._record_lines(node)

    def _record_lines(self, root: yaml.Node) -> None:
        """The line of every key and list item, and keys written twice; each node once (no aliases)."""
        pending: list[tuple[yaml.Node, YamlPath]] = [(root, ())]
        while pending:
            node, path = pending.pop()
            if isinstance(node, yaml.MappingNode):
                seen: set[str] = set()
                for key_node, value_node in node.value:
                    key = str(key_node.value)
                    line = key_node.start_mark.line + 1
                    if key in seen:
                        self.duplicates.append(self._at(line, path + (key,), "key appears twice"))
                    seen.add(key)
                    self.lines[path + (key,)] = line
                    pending.append((value_node, path + (key,)))
            elif isinstance(node, yaml.SequenceNode):
                for index, item in enumerate(node.value):
                    self.lines[path + (index,)] = item.start_mark.line + 1
                    pending.append((item, path + (index,)))

    def _at(self, line: int, path: YamlPath, message: str) -> ContentError:
        return ContentError(self.file, line, dotted(path), message)

    def line_of(self, path: Iterable[str | int]) -> int:
        path = tuple(path)
        while path not in self.lines:
            path = path[:-1]
        return self.lines[path]

    def error(self, path: Iterable[str | int], message: str) -> ContentError:
        """A problem at `path` in this document, with its line."""
        path = tuple(path)
        return ContentError(self.file, self.line_of(path), dotted(path), message)


def dotted(path: Iterable[str | int]) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            part = str(part)  # keys may be numbers or dates in YAML
            part = part if len(part) <= SHOWN_TEXT else part[: SHOWN_TEXT - 1] + "…"
            text += f".{part}" if text else part
    return text or "(document)"


# Syntax errors inside something opened on an earlier line (a bracket, a quote, a key) are found
# where the parser gives up, often lines later; the line to fix is where it was opened.
_RUNAWAY_QUOTE = "while reading a quoted text that runs on over several lines"
_OPENED_HERE = {
    "while parsing a flow sequence": "the [...] list that starts on this line is not closed properly",
    "while parsing a flow mapping": "the {...} mapping that starts on this line is not closed properly",
    "while scanning a quoted scalar": "the quoted text that starts on this line is not closed",
    _RUNAWAY_QUOTE: "the quoted text that starts on this line runs on over the next lines; "
                    "is its closing quote missing?",
    "while scanning a simple key": "this line has no ':' after its key",
}
# What PyYAML's terse messages usually mean, for the people who write these files.
_HINTS = {
    "mapping values are not allowed here": "a ':' here starts a key; check this line's indentation, "
                                           "or put the text in quotes",
    "expected <block end>": "check this line's indentation against the lines above it",
    "found character '\\t'": "YAML indents with spaces, not tabs",
}


def syntax_error(file: Path, text: str, error: yaml.YAMLError) -> ContentError:
    """A YAML error as `file:line: (yaml): message`, at the line a person would fix."""
    if isinstance(error, yaml.reader.ReaderError):
        line = text.count("\n", 0, max(error.position, 0)) + 1
        message = f"the character U+{error.character:04X} is not allowed in YAML text"
        return ContentError(file, line, "(yaml)", message)
    if not isinstance(error, yaml.MarkedYAMLError):
        return ContentError(file, 1, "(yaml)", str(error))
    problem = (error.problem or str(error)).strip()
    problem_line = error.problem_mark.line + 1 if error.problem_mark else None
    opened = _OPENED_HERE.get(error.context or "")
    if opened and error.context_mark is not None:
        line = error.context_mark.line + 1
        where = f" on line {problem_line}" if problem_line and problem_line != line else ""
        return ContentError(file, line, "(yaml)", f"{opened} ({problem}{where})")
    mark = error.problem_mark or error.context_mark
    hint = next((hint for start, hint in _HINTS.items() if problem.startswith(start)), None)
    return ContentError(file, mark.line + 1 if mark else 1, "(yaml)", f"{problem}; {hint}" if hint else problem)


def parse_yaml(file: Path, text: str) -> tuple[YamlDocument | None, list[ContentError]]:
    """Parse `text` (the content of `file`, or of an upload named `file`); syntax errors carry their line."""
    try:
        document = YamlDocument(file, text)
    except yaml.YAMLError as error:
        return None, [syntax_error(file, text, error)]
    return document, list(document.duplicates)


def decode_text(file: Path, data: bytes) -> tuple[str | None, list[ContentError]]:
    """`data` as UTF-8 text, or an error at the line of the first byte that is not UTF-8."""
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        return None, [ContentError(file, line, "(file)",
                                   f"is not UTF-8 text (byte 0x{data[error.start]:02x} on this line)")]


def decode_upload(file: Path, data: bytes, max_bytes: int) -> tuple[str | None, list[ContentError]]:
    """Uploaded bytes as text, refused when larger than `max_bytes` or not UTF-8."""
    if len(data) > max_bytes:
        return None, [ContentError(file, 1, "(file)", f"larger than {max_bytes // 1024} KB "
                                                      f"({len(data) // 1024} KB); the limit keeps the server safe")]
    return decode_text(file, data)


def read_yaml(file: Path, max_bytes: int) -> tuple[YamlDocument | None, list[ContentError]]:
    """Read and parse a YAML file, refusing files larger than `max_bytes`."""
    try:
        with file.open("rb") as handle:
            data = handle.read(max_bytes + 1)  # never more, even if the file grows meanwhile
    except OSError as error:
        return None, [ContentError(file, 1, "(file)", f"cannot be read: {error.strerror or error}")]
    if len(data) > max_bytes:
        return None, [ContentError(file, 1, "(file)", f"larger than {max_bytes // 1024} KiB")]
    text, errors = decode_text(file, data)
    if text is None:
        return None, errors
    return parse_yaml(file, text)


def internal_error(file: Path, error: Exception) -> ContentError:
    """A bug met while checking `file`: logged with its traceback, reported without it.

    The callers catch everything around one file, so that a bug triggered by one odd file costs that
    file, not the whole bank or page; the message is plain and the server log has the details.
    """
    logging.getLogger(__name__).exception("Checking %s failed", file)
    return ContentError(file, 1, INTERNAL, f"could not be checked ({type(error).__name__}); "
                                           "this is a bug in KQV Tutor, and the server log has the details")


def capped(errors: list[ContentError], limit: int = MAX_ERRORS) -> list[ContentError]:
    """The first `limit` errors and, when there are more, one line saying how many more."""
    if len(errors) <= limit:
        return errors
    first_left_out, left_out = errors[limit], len(errors) - limit
    more = ContentError(first_left_out.file, first_left_out.line, "(more)",
                        f"and {left_out:,} more problems in this file, not listed; fix these first", left_out)
    return errors[:limit] + [more]


def problem_count(errors: Iterable[ContentError]) -> int:
    """How many problems `errors` stand for, the ones counted but not listed included."""
    return sum(1 if error.more == 0 else error.more for error in errors)


def validate_model(model: type[BaseModel], data: Any, document: YamlDocument,
                   prefix: YamlPath = ()) -> tuple[Any, list[ContentError]]:
    """`data` as a `model`, or None and one error per problem, each at its line."""
    if not isinstance(data, dict):
        return None, [document.error(prefix, "expected a mapping of fields")]
    try:
        return model.model_validate(data), []
    except ValidationError as invalid:
        errors = []
        for problem in invalid.errors():
            location = prefix + tuple(problem["loc"])
            message = problem["msg"].removeprefix("Value error, ")
            if problem["type"] == "missing":
                message = "required field is missing"
            elif problem["type"] == "extra_forbidden":
                message = "unknown field (typo?)"
            elif problem["type"] == "literal_error" and location[-2:-1] == ("topics",):
                message = f"{shown(problem['input'])} is not in the topic vocabulary"
            errors.append(document.error(location, message))
        return None, errors
