"""Files and folders: the repository root, the results folder, and atomic writes.

The lowest layer, next to ``env`` and ``paper``: the engine, the data and the results store
all write through :func:`atomic_write`, so none of them depends on another for it.
"""
from __future__ import annotations

import os
import site
import sysconfig
import tempfile
from pathlib import Path
from typing import IO, Callable, Mapping

PACKAGE_DIR = Path(__file__).resolve().parent


def repo_root() -> Path | None:
    """The repository checkout this package was imported from, or None for an installed copy."""
    here = PACKAGE_DIR.parent
    if (here / "pyproject.toml").exists() and (here / "fptlib").is_dir():
        return here
    return None


def results_dir(directory: str | os.PathLike | None = None, env: Mapping[str, str] | None = None) -> Path:
    """``directory``, else $FPT_RESULTS_DIR, else ``results/`` of the checkout (so that notebooks,
    whose working directory is notebooks/, share the store with the command line), else ./results."""
    if directory is not None:
        return Path(directory)
    env = os.environ if env is None else env
    if env.get("FPT_RESULTS_DIR"):
        return Path(env["FPT_RESULTS_DIR"])
    root = PACKAGE_DIR.parent
    if (root / "results").is_dir() or (root / ".git").exists():
        return root / "results"
    return Path.cwd() / "results"


def atomic_write(path: str | os.PathLike, write: Callable[[IO], None], binary: bool = False) -> Path:
    """Call ``write(file)`` on a temporary file in the same folder, then ``os.replace`` it onto
    ``path``: readers (and a run resumed after a closed Colab tab) never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            write(f)
        os.chmod(tmp, 0o644)           # mkstemp makes 0600; results are meant to be read by others
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text))


def short_paths(text: str) -> str:
    """Replace machine-specific folders (site-packages, the checkout) by short names, so that
    printed output is the same on every machine set up the same way."""
    text = str(text)
    prefixes = [(sysconfig.get_paths().get("purelib", ""), "<site-packages>")]
    prefixes += [(p, "<site-packages>") for p in getattr(site, "getsitepackages", lambda: [])()]
    root = repo_root()
    if root is not None:
        prefixes.append((str(root), "<repo>"))
    for prefix, name in prefixes:
        if prefix and prefix in text:
            text = text.replace(prefix, name)
    return text
