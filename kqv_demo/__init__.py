"""KQV Tutor: correct misconceptions about transformer attention with live models."""

from kqv_demo import settings as _settings  # noqa: F401  (sets offline mode before transformers loads)

__version__ = "0.1.0"
