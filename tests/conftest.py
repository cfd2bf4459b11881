"""Shared fixtures: the real models, loaded once per test session (no mocks on the model path)."""

from __future__ import annotations

import pytest

from kqv_demo.runtime import Runtime, shared_runtime


@pytest.fixture(scope="session")
def runtime() -> Runtime:
    return shared_runtime()


@pytest.fixture(scope="session")
def config(runtime: Runtime):
    """SmolLM2's config: tests read model facts from here, never from a copied number."""
    return runtime.smollm2.model.config
