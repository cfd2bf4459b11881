"""`python -m kqv_demo doctor`: is everything in place to run the models offline?"""

from __future__ import annotations

import importlib.metadata as metadata
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from kqv_demo import packages, settings
from kqv_demo.errors import ModelUnavailable
from kqv_demo.model_cache import check_cache, smollm2_cache_path, unwritable_reason

SETUP_FIX = f"{sys.executable} -m pip install -r requirements.txt   (or: make setup)"
CACHE_FIX = ("export KQV_CACHE_DIR=/a/writable/folder   (any folder this user can write; the app reads it too), "
             "or make {root} writable for this user")
LIBRARIES = ("torch", "transformers", "gguf", "accelerate", "safetensors", "streamlit")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None


def check_python() -> Check:
    version = sys.version.split()[0]
    ok = sys.version_info >= (3, 11)
    return Check("python", ok, f"Python {version}", None if ok else "install Python 3.11 or newer")


def check_library(name: str) -> Check:
    try:
        return Check(name, True, f"{name} {metadata.version(name)}")
    except metadata.PackageNotFoundError:
        return Check(name, False, f"{name} is not installed", SETUP_FIX)


def check_package_file(label: str, locate) -> tuple[Check, packages.PackagedFile | None]:
    try:
        packaged = locate()
    except ModelUnavailable as missing:
        return Check(label, False, str(missing), missing.fix), None
    problem = packages.verify(packaged)
    if problem:
        fix = packages.install_command(packaged.package, _version(packaged.package))
        return Check(label, False, problem, fix), None
    size_mb = packaged.path.stat().st_size / 1e6
    proof = "hash matches the package RECORD" if packaged.expected_hash else "override, not hash-checked"
    return Check(label, True, f"{packaged.path.name} ({size_mb:.1f} MB, {proof})"), packaged


def _version(package: str) -> str:
    return {packages.SMOLLM2_PACKAGE: packages.SMOLLM2_VERSION}.get(package, packages.MINILM_VERSION)


def check_cache_state(gguf: packages.PackagedFile) -> Check:
    root = settings.cache_dir()
    folder = smollm2_cache_path(root)
    status = check_cache(folder, gguf)
    if status.valid:  # loading a valid copy writes nothing, so a read-only folder is fine
        return Check("converted cache", True, f"valid ({folder})")
    problem = unwritable_reason(root)
    if problem:
        return Check("converted cache", False,
                     f"{status.reason}, and the cache folder {root} is not writable ({problem}), "
                     "so the converted copy cannot be built", CACHE_FIX.format(root=root))
    return Check("converted cache", True, f"{status.reason}; it will be built at first load ({folder})")


def check_models() -> list[Check]:
    from kqv_demo.runtime import load_runtime  # heavy import, only when the files are fine

    started = time.perf_counter()
    try:
        runtime = load_runtime()
    except Exception as error:  # report any load failure as a finding, not a traceback
        return [Check("load models", False, f"{type(error).__name__}: {error}", _fix_for(error))]
    load_s = time.perf_counter() - started
    prompt = "The capital of France is"
    started = time.perf_counter()
    trace = runtime.trace(prompt, names_filter=lambda name: False)
    forward_ms = (time.perf_counter() - started) * 1000
    probabilities = trace.logits[-1].softmax(-1)
    top = int(probabilities.argmax())
    word = runtime.smollm2.tokenizer.decode([top])
    shape = runtime.smollm2.shape
    smollm2 = Check(
        "SmolLM2-135M-Instruct",
        True,
        f"{shape.n_layers} layers, {shape.n_heads} query heads / {shape.n_kv_heads} key-value heads; "
        f"{prompt!r} -> {word!r} (p = {probabilities[top]:.2f}) in {forward_ms:.0f} ms",
    )
    embedding = runtime.embed(["Attention mixes values with softmax weights."])[0]
    minilm = Check(
        "all-MiniLM-L6-v2",
        True,
        f"{runtime.minilm.shape.n_layers} layers, {runtime.minilm.shape.n_heads} heads; "
        f"sentence embedding of dim {embedding.shape[0]}, norm {float((embedding**2).sum() ** 0.5):.3f}",
    )
    return [Check("load models", True, f"both loaded in {load_s:.1f} s"), smollm2, minilm]


def _fix_for(error: Exception) -> str:
    """Reinstalling does not help when the cache folder refused a write; saying where to write does."""
    root = settings.cache_dir()
    written = getattr(error, "filename", None)
    in_cache = isinstance(written, str) and Path(written).resolve().is_relative_to(root.resolve())
    if isinstance(error, OSError) and in_cache:
        return CACHE_FIX.format(root=root)
    return SETUP_FIX


def run_checks() -> list[Check]:
    checks = [check_python(), *(check_library(name) for name in LIBRARIES)]
    gguf_check, gguf = check_package_file(packages.SMOLLM2_PACKAGE, packages.smollm2_gguf)
    minilm_check, minilm = check_package_file(packages.MINILM_PACKAGE, packages.minilm_weights)
    checks += [gguf_check, minilm_check]
    if gguf is not None:
        checks.append(check_cache_state(gguf))
    if all(check.ok for check in checks) and minilm is not None:
        checks += check_models()
    else:
        checks.append(Check("load models", False, "skipped until the problems above are fixed"))
    return checks


def report(checks: list[Check]) -> str:
    lines = ["KQV Tutor doctor"]
    for check in checks:
        lines.append(f"  {'ok  ' if check.ok else 'FAIL'}  {check.name}: {check.detail}")
        if check.fix:
            lines.append(f"        fix: {check.fix}")
    failed = [check for check in checks if not check.ok]
    lines.append("All checks passed." if not failed else f"{len(failed)} check(s) failed; see the fixes above.")
    return "\n".join(lines)
