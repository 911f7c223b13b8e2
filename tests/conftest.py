"""Shared fixtures (helpers live in fpt_testing.py)."""
from __future__ import annotations

import pytest

# The environment every test and notebook kernel runs in is set in the repository's conftest.py.


@pytest.fixture(scope="session")
def minilm():
    """The real all-MiniLM-L6-v2 weights, loaded once per session (read-only use only)."""
    from fptlib.backbones import load_backbone

    return load_backbone("minilm")


@pytest.fixture(autouse=True)
def _fpt_environment_restored():
    """``notebook.setup()`` exports its choices (``$FPT_RESULTS_DIR``, ...) for the notebook's kernel, as
    it should; in the test process that would leak into the next test. Every FPT_ variable a test set or
    changed is put back afterwards."""
    import os
    before = {k: v for k, v in os.environ.items() if k.startswith("FPT_")}
    yield
    for k in [k for k in os.environ if k.startswith("FPT_") and k not in before]:
        del os.environ[k]
    os.environ.update(before)
