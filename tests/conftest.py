"""Shared fixtures (helpers live in fpt_testing.py)."""
from __future__ import annotations

import os

import pytest

# Tests never reach the network: the hub is declared offline before transformers is imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def minilm():
    """The real all-MiniLM-L6-v2 weights, loaded once per session (read-only use only)."""
    from fptlib.backbones import load_backbone

    return load_backbone("minilm")
