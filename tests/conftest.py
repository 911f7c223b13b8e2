"""Shared fixtures (helpers live in fpt_testing.py)."""
from __future__ import annotations

import os

import pytest

# Tests never reach the network: the hub is declared offline before transformers is imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# One thread (for the notebook kernels too, which inherit it): float sums come out in one order, so a
# notebook's training outputs do not depend on the machine's load (env.tune_cpu_threads picks 1 or 2
# threads by load otherwise); tools/run_notebooks.py executes the committed outputs the same way.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def minilm():
    """The real all-MiniLM-L6-v2 weights, loaded once per session (read-only use only)."""
    from fptlib.backbones import load_backbone

    return load_backbone("minilm")
