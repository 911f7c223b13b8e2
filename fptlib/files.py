"""Files and folders: the repository root, the results folder, and atomic writes.

The lowest layer, next to ``env`` and ``paper``: the engine, the data and the results store
all write through :func:`atomic_write`, so none of them depends on another for it.
"""
from __future__ import annotations

import json
import os
import site
import sysconfig
import tempfile
from pathlib import Path
from typing import IO, Callable, Mapping

try:
    import fcntl                # POSIX; on Windows the manifest is written without a lock
except ImportError:             # pragma: no cover
    fcntl = None

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


EVIDENCE = "evidence"          # the tracked sub-folder of the results store for the evidence profile
MANIFEST = "manifest.json"     # per run key: the command, hardware, wall time, commit, created_at


def evidence_dir(directory: str | os.PathLike | None = None, env: Mapping[str, str] | None = None) -> Path:
    """The evidence profile's records: ``<results store>/evidence/`` (tracked by git, unlike the
    rest of the store; its weights and checkpoints stay ignored)."""
    return results_dir(directory, env) / EVIDENCE


PACKAGED_EVIDENCE = PACKAGE_DIR / EVIDENCE     # the wheel's copy of results/evidence/ (pyproject.toml)


def committed_evidence_dir() -> Path:
    """The evidence records that ship with the course, to read (never to write): ``results/evidence/``
    of the checkout this package runs from, else, in an installed wheel (Colab), the copy the wheel
    carries as ``fptlib/evidence/``. Unlike :func:`evidence_dir` it ignores ``$FPT_RESULTS_DIR``: a
    learner's own store (Google Drive, say) holds their runs, the course's runs stay the course's."""
    root = repo_root()
    return root / "results" / EVIDENCE if root is not None else PACKAGED_EVIDENCE


NOTEBOOK_RUNS = "notebooks"    # results/notebooks/: the quick runs the committed notebook outputs show


def notebook_runs_dir() -> Path | None:
    """``results/notebooks/`` of the checkout: the quick-profile records (and the trained weights the
    notebooks load) that ``tools/run_notebooks.py`` produced with the committed notebook outputs,
    tracked by git. Under ``pytest --nbval`` the notebooks load these runs instead of training them,
    so what nbval compares does not depend on the CPU, the thread count or the load. None in an
    installed copy."""
    root = repo_root()
    return root / "results" / NOTEBOOK_RUNS if root is not None else None


# ---- user files and output folders: one reader, one check, each naming the file and the fix -----

def read_json(path: str | os.PathLike, fix: str, expect: type = dict):
    """The JSON value of file ``path``, of type ``expect``; ValueError naming the file, what is
    wrong with it and ``fix`` otherwise (a folder, a FIFO or device, unreadable, not JSON, nesting
    too deep, or a JSON value of another type)."""
    path = Path(path)
    if path.exists() and not path.is_file():
        problem = "a folder" if path.is_dir() else "not a regular file (a FIFO, socket or device)"
    else:
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as err:
            problem = f"unreadable ({type(err).__name__}: {err})"
        except json.JSONDecodeError as err:
            problem = f"not valid JSON ({err})"
        except RecursionError:
            problem = "JSON nested too deep to read"
        else:
            if isinstance(value, expect):
                return value
            problem = f"a JSON {type(value).__name__}, not a JSON {expect.__name__}"
    raise ValueError(f"{path} is {problem}: {fix}")


def check_output_dir(folder: str | os.PathLike, what: str) -> Path:
    """Make sure files can be written in ``folder`` (created if missing) before anything is
    computed for it; ValueError naming ``what`` (e.g. "--results-dir"), the folder and the fix."""
    folder = Path(folder)
    fix = f"give {what} a folder you can write to"
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{what} {folder} is a file, not a folder: {fix}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise ValueError(f"{what} {folder} cannot be written to ({err.strerror or err}): {fix}") from None
    return folder


def check_output_file(path: str | os.PathLike, what: str) -> Path:
    """Make sure ``path`` can be written (atomically: a new file in its folder) before anything is
    computed for it; ValueError naming ``what``, the path and the fix."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} {path} is a folder: give a file name, e.g. {what} {path / 'out.png'}")
    if path.exists() and not path.is_file():
        raise ValueError(f"{what} {path} is not a regular file (a FIFO or device): give a file name")
    check_output_dir(path.parent, f"the folder of {what}")
    return path


MANIFEST_FIX = "restore it with git (git checkout -- {name}) or delete it to start a new manifest"


def read_manifest(folder: str | os.PathLike) -> dict[str, dict]:
    """The manifest of a store folder (run key -> how it was produced); {} when there is none."""
    path = Path(folder) / MANIFEST
    if not path.exists():
        return {}
    return read_json(path, MANIFEST_FIX.format(name=path.name))


def add_to_manifest(folder: str | os.PathLike, key: str, entry: Mapping) -> Path:
    """Add (or replace) one run's entry and rewrite the manifest atomically. The read-modify-write
    holds an exclusive lock on ``.manifest.lock`` (POSIX), so several ``reproduce`` processes can
    fill one folder side by side without losing each other's entries."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    with open(Path(folder) / ".manifest.lock", "a") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        manifest = read_manifest(folder)
        manifest[key] = dict(entry)
        text = json.dumps(dict(sorted(manifest.items())), indent=1, sort_keys=True) + "\n"
        return atomic_write_text(Path(folder) / MANIFEST, text)


def claim_run(folder: str | os.PathLike, key: str, *, wait: bool = False) -> IO | None:
    """An exclusive lock on training run ``key`` in the store ``folder``, held until the returned
    file is closed; ``None`` when another process holds it and ``wait`` is False. Two ``reproduce``
    processes sharing a store (two CPU cores, two GPUs) then never train the same run twice."""
    claims = Path(folder) / ".claims"
    claims.mkdir(parents=True, exist_ok=True)
    handle = open(claims / f"{key}.lock", "a")
    if fcntl is not None:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            handle.close()
            return None
    return handle


def atomic_write(path: str | os.PathLike, write: Callable[[IO], None], binary: bool = False) -> Path:
    """Call ``write(file)`` on a temporary file in the same folder, then ``os.replace`` it onto
    ``path``: readers (and a run resumed after a closed Colab tab) never see a half-written file."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise WriteError(f"cannot write {path}: {err.strerror or err}; give a folder you can write to") from err
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            write(f)
        os.chmod(tmp, 0o644)           # mkstemp makes 0600; results are meant to be read by others
        os.replace(tmp, path)
    except BaseException as err:
        if os.path.exists(tmp):
            os.unlink(tmp)
        # a full disk: OSError ENOSPC, or torch.save's "[enforce fail at inline_container.cc] unexpected pos"
        if isinstance(err, OSError) or (isinstance(err, RuntimeError) and "inline_container" in str(err)):
            raise WriteError(f"writing {path} failed ({err}): is the disk full? Free some space on it "
                             f"(df -h {path.parent}) and run again; nothing was replaced") from err
        raise
    return path


class WriteError(RuntimeError):
    """A file could not be written (a folder that cannot be written, a full disk); names the file."""


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


def display_path(path: str | os.PathLike) -> str:
    """A folder relative to the repository (or home) when possible, so printed output is stable."""
    path = Path(path).resolve()
    root = repo_root()
    if root is not None:
        try:
            return str(path.relative_to(root)) + "/"
        except ValueError:
            pass
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)
