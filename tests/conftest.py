"""Shared test fixtures: torch is optional locally, required in CI (MINIGRAD_REQUIRE_TORCH=1)."""

from __future__ import annotations

import os

import pytest

try:
    import torch
except ImportError:  # pragma: no cover - depends on the environment
    torch = None

REQUIRE_TORCH = os.environ.get("MINIGRAD_REQUIRE_TORCH") == "1"


def pytest_sessionstart(session: pytest.Session) -> None:
    if REQUIRE_TORCH and torch is None:
        raise pytest.UsageError(
            "MINIGRAD_REQUIRE_TORCH=1 but torch is not importable: the torch comparisons "
            "must run here (pip install torch==2.13.0)"
        )


@pytest.fixture
def torch_module():
    """The torch module; the test is skipped when torch is missing (and CI fails instead)."""
    if torch is None:
        if REQUIRE_TORCH:
            pytest.fail("torch is required (MINIGRAD_REQUIRE_TORCH=1) but missing")
        pytest.skip("torch is not installed")
    return torch
