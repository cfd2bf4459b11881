"""The library is free of UI code: Streamlit is imported only under kqv_demo/ui/."""

from __future__ import annotations

import ast
from pathlib import Path

LIBRARY = Path(__file__).parent.parent / "kqv_demo"


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_streamlit_is_imported_only_by_the_ui_package():
    outside = [
        str(path.relative_to(LIBRARY))
        for path in LIBRARY.rglob("*.py")
        if "ui" not in path.relative_to(LIBRARY).parts[:1]
        and any(name.split(".")[0] == "streamlit" for name in imported_modules(path))
    ]
    assert outside == []
