"""The library is free of UI code: Streamlit is imported only under kqv_demo/ui/."""

from __future__ import annotations

import ast
import subprocess
import sys
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


def library_modules() -> list[Path]:
    return [path for path in LIBRARY.rglob("*.py") if path.relative_to(LIBRARY).parts[0] != "ui"]


def test_no_library_module_imports_streamlit_or_the_ui_package_even_inside_a_function():
    outside = [
        f"{path.relative_to(LIBRARY)}: {name}"
        for path in library_modules()
        for name in imported_modules(path)
        if name.split(".")[0] == "streamlit" or name.startswith("kqv_demo.ui")
    ]
    assert outside == []


def test_importing_the_whole_library_leaves_streamlit_unloaded():
    names = sorted(
        ".".join(("kqv_demo", *path.relative_to(LIBRARY).with_suffix("").parts)).removesuffix(".__init__")
        for path in library_modules()
        if path.name != "__main__.py"
    )
    code = "import importlib, sys\n" + "".join(f"importlib.import_module({name!r})\n" for name in names) + (
        "print('streamlit' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=LIBRARY.parent)
    assert len(names) > 30 and result.stdout.strip() == "False"
