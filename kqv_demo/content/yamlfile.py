"""YAML files validated against pydantic models, with every problem reported as `file:line: field: message`.

Shared by the claim bank (content/claims, content/topics.yaml) and round files (content/rounds).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

YamlPath = tuple[str | int, ...]


@dataclass(frozen=True)
class ContentError:
    file: Path
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{shown_path(self.file)}:{self.line}: {self.field}: {self.message}"


def shown_path(path: Path) -> str:
    """`path` relative to the working folder when it is inside it (shorter messages)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class YamlDocument:
    """A parsed YAML document and the line of every key and list item in it."""

    def __init__(self, file: Path, text: str) -> None:
        self.file = file
        self.lines: dict[YamlPath, int] = {(): 1}
        self.duplicates: list[ContentError] = []
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            self.data: Any = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
        if node is not None:
            self._walk(node, ())

    def _walk(self, node: yaml.Node, path: YamlPath) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value)
                line = key_node.start_mark.line + 1
                if key in seen:
                    self.duplicates.append(ContentError(self.file, line, dotted(path + (key,)), "key appears twice"))
                seen.add(key)
                self.lines[path + (key,)] = line
                self._walk(value_node, path + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.lines[path + (index,)] = item.start_mark.line + 1
                self._walk(item, path + (index,))

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
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(document)"


def parse_yaml(file: Path, text: str) -> tuple[YamlDocument | None, list[ContentError]]:
    """Parse `text` (the content of `file`, or of an upload named `file`); syntax errors carry their line."""
    try:
        document = YamlDocument(file, text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 1
        return None, [ContentError(file, line, "(yaml)", f"{error.problem or error}".strip())]
    except yaml.YAMLError as error:
        return None, [ContentError(file, 1, "(yaml)", str(error))]
    return document, list(document.duplicates)


def decode_upload(file: Path, data: bytes, max_bytes: int) -> tuple[str | None, list[ContentError]]:
    """Uploaded bytes as text, refused when larger than `max_bytes` or not UTF-8."""
    if len(data) > max_bytes:
        return None, [ContentError(file, 1, "(file)", f"larger than {max_bytes // 1024} KB "
                                                      f"({len(data) // 1024} KB); the limit keeps the server safe")]
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError as error:
        return None, [ContentError(file, 1, "(file)", f"is not UTF-8 text: {error}")]


def read_yaml(file: Path, max_bytes: int) -> tuple[YamlDocument | None, list[ContentError]]:
    """Read and parse a YAML file, refusing files larger than `max_bytes`."""
    try:
        if file.stat().st_size > max_bytes:
            return None, [ContentError(file, 1, "(file)", f"larger than {max_bytes // 1024} KiB")]
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return None, [ContentError(file, 1, "(file)", f"cannot be read: {error}")]
    return parse_yaml(file, text)


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
                message = f"{problem['input']!r} is not in the topic vocabulary"
            errors.append(document.error(location, message))
        return None, errors
