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


# --- layers ------------------------------------------------------------------------------------------
# Each part of the library may import only from the layers below its own (any import, even one inside a
# function: a deferred import hides a circle, it does not remove it). A new module must be given a layer
# here, which is where to think about what it may use.
LAYERS: list[set[str]] = [
    {"errors", "settings"},
    {"markup", "stats", "numerics", "packages", "ratelimit", "hooks", "trace"},
    {"model_cache"},
    {"runtime", "storage"},  # the models and the database: neither knows the quiz, the bank or the UI
    {"demos", "doctor"},
    {"content"},  # the bank; it knows the demos' ids only (kqv_demo.demos imports no demo module)
    {"claim_source", "explainer"},
    {"quiz"},
    {"classroom"},
    {"exports"},
    {"stress"},
    {"cli", "bench", "ui"},
    {"__main__"},
]
LAYER_OF = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}


def part_of(module: str) -> str | None:
    """kqv_demo.quiz.session -> quiz; kqv_demo.storage -> storage; anything outside the library -> None."""
    pieces = module.split(".")
    return pieces[1] if pieces[0] == "kqv_demo" and len(pieces) > 1 else None


def part_imports() -> dict[str, set[tuple[str, str]]]:
    """part -> {(importing file, imported part)} across the library, the UI included."""
    found: dict[str, set[tuple[str, str]]] = {}
    for path in LIBRARY.rglob("*.py"):
        source = path.relative_to(LIBRARY).with_suffix("").parts[0]
        if source == "__init__":
            continue
        for name in imported_modules(path):
            target = part_of(name)
            if target and target != source:
                found.setdefault(source, set()).add((str(path.relative_to(LIBRARY)), target))
    return found


def test_every_part_of_the_library_has_a_layer():
    parts = {path.relative_to(LIBRARY).with_suffix("").parts[0] for path in LIBRARY.rglob("*.py")} - {"__init__"}
    assert sorted(parts - set(LAYER_OF)) == []


def test_each_part_imports_only_from_the_layers_below_it():
    upward = sorted(
        f"{file} imports kqv_demo.{target} (layer {LAYER_OF[target]}, its own is {LAYER_OF[source]})"
        for source, edges in part_imports().items()
        for file, target in edges
        if LAYER_OF[target] >= LAYER_OF[source]
    )
    assert upward == []


def test_storage_knows_nothing_of_the_quiz_and_quiz_nothing_of_classes():
    # the two circles the layers removed: storage ran the quiz's scheduler, quiz looked up class codes
    edges = part_imports()
    assert {target for _file, target in edges["storage"]} <= {"errors", "settings"}
    assert "classroom" not in {target for _file, target in edges["quiz"]}


def test_no_demo_reaches_into_a_hugging_face_model_tokenizer_or_config():
    # a demo asks the runtime (demos.base.DemoRuntime): runtime.shape(), encode, decode, token_texts...
    reached = sorted(
        f"{path.relative_to(LIBRARY)}:{node.lineno}: .{node.attr}"
        for path in (LIBRARY / "demos").glob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute) and node.attr in ("smollm2", "minilm", "tokenizer", "config")
    )
    assert reached == []
