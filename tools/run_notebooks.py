#!/usr/bin/env python
"""Re-execute the course notebooks in place (quick profile) and print each one's wall time.

    .venv/bin/python tools/run_notebooks.py                 # every notebooks/NN_*.ipynb, in order
    .venv/bin/python tools/run_notebooks.py 02 03           # only those whose name starts so
    .venv/bin/python tools/run_notebooks.py --fresh         # empty results store first (a clean run)
    .venv/bin/python tools/run_notebooks.py --check         # execute into a temporary copy; keep files
    .venv/bin/python tools/run_notebooks.py --timing 12     # also list the cells that took 5 s or more

Notebooks run in the kernel of this Python (the project's virtual environment), in their own
folder, with ``FPT_PROFILE=quick`` unless ``--profile`` says otherwise, so the committed outputs
are what ``pytest --nbval`` compares against. Their results store is ``results/notebooks/``
(``files.notebook_runs_dir``), tracked by git: commit it with the notebooks. Under ``pytest --nbval``
the notebooks load those very runs (a temporary copy) instead of training them, so what nbval
compares does not depend on the CPU, the thread count or the load (training numbers do: 79.80%
at one thread, 79.57% at two, for one Bit Memory quick run); ``tests/test_notebook_runs.py``
retrains one of them and checks it against the committed record within a stated tolerance. A
notebook that trained runs is executed a second time, loading them, and that execution is the one
written: its outputs are then the ones nbval sees. After a run of every notebook, the trained
weights no notebook loaded are removed from results/notebooks/weights/ (``prune_weights``). Execution stops at the first failing notebook (the
file is left untouched; ``--keep-going`` goes on with the next) and the exit status is 1.

Progress bars are ipywidgets; nbclient saves their final state in the notebook's metadata, but
each bar's plain-text fallback (what GitHub, nbviewer and a front end without that state show) is
the text at 0%. ``finished_bars`` rewrites it from the saved state, so a finished bar reads as
finished wherever the notebook is opened.
"""
from __future__ import annotations

import argparse
import html
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"


def find_notebooks(prefixes: list[str]) -> list[Path]:
    found = sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if prefixes:
        found = [p for p in found if any(p.name.startswith(x) for x in prefixes)]
    return found


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
BAR_WIDTH = 10


def bar_text(state: dict, model_id: str) -> str | None:
    """The text of a tqdm.notebook bar (an HBox of label, progress and text) from saved widget
    state, as tqdm prints it: ``desc: 100%|██████████| 200/200 [00:12<00:00, 17.25it/s]``; None
    for any other widget."""
    box = state.get(model_id) or {}
    if box.get("model_name") != "HBoxModel":
        return None
    kids = [state.get(str(c).removeprefix("IPY_MODEL_")) or {} for c in box.get("state", {}).get("children", [])]
    if [k.get("model_name") for k in kids] != ["HTMLModel", "FloatProgressModel", "HTMLModel"]:
        return None
    left, bar, right = (k.get("state", {}) for k in kids)
    frac = min(max(bar.get("value", 0) / bar["max"], 0.0), 1.0) if bar.get("max") else 0.0
    filled = round(frac * BAR_WIDTH)
    text = f"{left.get('value', '')}|{'█' * filled}{' ' * (BAR_WIDTH - filled)}|{right.get('value', '')}"
    return html.unescape(text).replace("\u2007", " ")


def finished_bars(nb) -> int:
    """Set each progress bar's ``text/plain`` output to its final state (see the module doc).
    Returns how many outputs changed."""
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    changed = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            view = data.get(WIDGET_VIEW)
            text = bar_text(state, view.get("model_id", "")) if view else None
            if text is not None and data.get("text/plain") != text:
                data["text/plain"] = text
                changed += 1
    return changed


def slow_cells(nb, at_least: float = 5.0) -> list[tuple[float, int, str]]:
    """``(seconds, cell index, first line)`` of the code cells that took ``at_least`` seconds, from
    the timing nbclient records (``record_timing``), slowest first."""
    from datetime import datetime

    out = []
    for i, cell in enumerate(nb.cells):
        t = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in t and "shell.execute_reply" in t:
            start, end = (datetime.fromisoformat(t[k].replace("Z", "+00:00"))
                          for k in ("iopub.execute_input", "shell.execute_reply"))
            seconds = (end - start).total_seconds()
            if seconds >= at_least:
                first = next((line for line in cell.source.splitlines()
                              if line.strip() and not line.startswith("#")), "")
                out.append((seconds, i, first[:70]))
    return sorted(out, reverse=True)


def execute(path: Path, timeout: int, write: bool, timing: bool = False) -> float:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}},
        record_timing=timing, allow_errors=False,
    )
    start = time.perf_counter()
    client.execute()
    wall = time.perf_counter() - start
    finished_bars(nb)
    if timing:
        for seconds, i, first in slow_cells(nb):
            print(f"\n    cell {i:>3} {seconds:7.1f} s  {first}", end="")
        print(flush=True)
        for cell in nb.cells:      # the committed notebooks carry no timing
            cell.get("metadata", {}).pop("execution", None)
    if write:
        from fptlib.files import atomic_write
        atomic_write(path, lambda f: nbformat.write(nb, f))
    return wall


def stored(store: Path) -> set[str]:
    """The run records in the notebooks' store. A notebook that adds some has trained, and printed so
    (plans, "training ..."); it runs a second time, loading them, so that its committed outputs are
    what ``pytest --nbval`` sees when it loads the committed runs."""
    return {p.name for p in store.glob("*.json")} if store.is_dir() else set()


def prune_weights(store: Path, loaded: set[str]) -> tuple[int, int]:
    """Remove the trained weights no notebook loaded (after a run of every notebook): records are
    small and all tracked, weights are tracked only where a notebook needs them (attention of a
    trained model), not the ~40 MB of a fully trained transformer that only reports its accuracy."""
    folder = store / "weights"
    if not folder.is_dir():
        return 0, 0
    dropped = [p for p in folder.glob("*.pt") if p.name not in loaded]
    for p in dropped:
        p.unlink()
    return len(list(folder.glob("*.pt"))), len(dropped)


def main(argv: list[str] | None = None) -> int:
    from fptlib.experiments import PROFILES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("prefixes", nargs="*", help="run only notebooks whose file name starts so (e.g. 02)")
    ap.add_argument("--profile", default="quick", choices=PROFILES)
    ap.add_argument("--fresh", action="store_true",
                    help="start from an empty results/notebooks/ (moves what it holds to a backup folder)")
    ap.add_argument("--check", action="store_true", help="execute without writing the notebooks back")
    ap.add_argument("--timeout", type=int, default=1800, help="per-cell timeout in seconds")
    ap.add_argument("--timing", action="store_true", help="also print the cells that took 5 s or more")
    ap.add_argument("--keep-going", action="store_true", help="go on with the next notebook after a failure")
    args = ap.parse_args(argv)

    os.environ["FPT_PROFILE"] = args.profile
    os.environ.setdefault("OMP_NUM_THREADS", "1")      # as the root conftest.py: outputs independent of load
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    os.environ.pop("FPT_NOTEBOOK_CHECK", None)     # the committed outputs are the full cells', not pytest's check
    from fptlib.files import notebook_runs_dir
    store = notebook_runs_dir()                    # the tracked store the committed outputs come from
    os.environ["FPT_RESULTS_DIR"] = str(store)
    from fptlib.experiments import LOADED_WEIGHTS_LOG
    loaded_log = Path(tempfile.mkdtemp(prefix="fpt-loaded-weights-")) / "loaded.txt"
    loaded_log.touch()
    os.environ[LOADED_WEIGHTS_LOG] = str(loaded_log)    # experiments.load_model appends what it loads

    paths = find_notebooks(args.prefixes)
    if not paths:
        print("no notebooks matched", file=sys.stderr)
        return 2
    if args.fresh and store.is_dir() and any(store.iterdir()):
        backup = Path(tempfile.mkdtemp(prefix="fpt-notebook-runs-backup-"))
        shutil.move(str(store), backup / store.name)
        print(f"moved {store} to {backup}")

    total, failed = 0.0, []
    for path in paths:
        print(f"{path.name:<40}", end=" ", flush=True)
        try:
            before = stored(store)
            wall = execute(path, args.timeout, write=not args.check, timing=args.timing)
            if stored(store) != before:      # it trained: run it again, so that its committed outputs
                print(f"{wall:7.1f} s (trained), again:", end=" ", flush=True)    # are the loading ones
                wall += execute(path, args.timeout, write=not args.check, timing=args.timing)
        except Exception as err:  # nbclient raises CellExecutionError with the traceback
            print("FAILED", flush=True)
            print((str(err) or repr(err))[-4000:], file=sys.stderr)
            if not args.keep_going:
                return 1
            failed.append(path.name)
            continue
        total += wall
        print(f"{wall:7.1f} s", flush=True)
    print(f"{'total':<40} {total:7.1f} s ({total / 60:.1f} min)")
    if not args.prefixes and not failed and not args.check:
        kept, dropped = prune_weights(store, set(loaded_log.read_text().split()))
        print(f"results/notebooks/weights/: kept the {kept} the notebooks load, removed {dropped} they do not")
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
