"""Shared fixtures (helpers live in fpt_testing.py)."""
from __future__ import annotations

import pytest

# The environment every test and notebook kernel runs in is set in the repository's conftest.py.


@pytest.fixture(scope="session")
def minilm():
    """The real all-MiniLM-L6-v2 weights, loaded once per session (read-only use only)."""
    from fptlib.backbones import load_backbone

    return load_backbone("minilm")
