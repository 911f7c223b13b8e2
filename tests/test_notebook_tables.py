"""The notebooks show the same tables as `python -m fptlib reproduce`, and their prose never states
what a run found (issue #12). Notebook sources are parsed, never executed, here."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import nbformat
import pytest

from fptlib import experiments, files, paper, report
from fptlib import notebook as nb

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
# every call that names a table of `reproduce`: the report's and the notebook helpers' (which call it)
TABLE_CALL = re.compile(r"\b(?:paper_table|show_table|run_table|table_configs|experiments\.table)\(\s*[\"']([\w-]+)[\"']")
# the notebooks that show a paper table, and the tables each must show
TABLE_NOTEBOOKS = {
    "02_bit_memory": {"table1"}, "03_bit_xor": {"table1"}, "04_listops": {"table1"}, "05_images": {"table1"},
    "06_cifar10_lra": {"table1"}, "07_homology": {"table1"}, "08_pretraining": {"init", "compute"},
    "09_architecture": {"architecture", "table1"},
    "10_parameters": {"ladder", "layernorm", "more_than_fpt", "depth", "model_size"},
    "11_honest_comparisons": {"lr_critique", "tuned_lr"},
}
RESULT_WORDS = ("beats", "wins", "outperforms", "shows that")
QUOTING = ("paper", "critique", "claim")      # a sentence that attributes its result to the paper


def _notebook(stem: str):
    return nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4)


def _source(stem: str, cell_type: str) -> list[str]:
    return [c.source for c in _notebook(stem).cells if c.cell_type == cell_type]


def table_names(code: str) -> set[str]:
    return set(TABLE_CALL.findall(code))


def result_sentences(markdown: str) -> list[str]:
    """Sentences of a markdown cell that state a result without saying it is the paper's."""
    sentences = re.split(r"(?<=[.!?])\s+", " ".join(markdown.split()))
    return [s for s in sentences if any(w in s.lower() for w in RESULT_WORDS)
            and not any(q in s.lower() for q in QUOTING)]


@pytest.mark.parametrize("stem", sorted(TABLE_NOTEBOOKS))
def test_notebook_tables_are_reproduce_tables(stem):
    code = "\n".join(_source(stem, "code"))
    found = table_names(code)
    known = set(experiments.names(run_sets=True))
    assert found, f"{stem} shows no table of `reproduce`"
    assert found <= known, f"{stem} names tables {sorted(found - known)} that `reproduce` does not know ({sorted(known)})"
    assert TABLE_NOTEBOOKS[stem] <= found, f"{stem} lacks {sorted(TABLE_NOTEBOOKS[stem] - found)}"
    # what the table cell displays is the report's rendering, not a hand-built pairing of runs and paper values
    assert "show_table(" in code or "paper_table(" in code


@pytest.mark.parametrize("stem", sorted(TABLE_NOTEBOOKS))
def test_notebook_tables_sit_beside_the_committed_evidence(stem):
    """Every table a notebook runs is also shown from the committed evidence (its quick runs only
    check that the code runs); Remote Homology is a download, so it has no evidence here."""
    code = "\n".join(_source(stem, "code"))
    shown = set(re.findall(r'show_evidence\(\s*"(\w+)"', code))
    expected = TABLE_NOTEBOOKS[stem] if stem != "07_homology" else set()
    assert expected <= shown, f"{stem} shows no committed evidence for {sorted(expected - shown)}"
    assert "show_evidence(\"attention\")" in "\n".join(_source("12_attention_explorer", "code"))


@pytest.mark.parametrize("stem", ["08_pretraining", "09_architecture", "10_parameters", "11_honest_comparisons"])
def test_ablation_notebooks_build_no_configs_by_hand(stem):
    code = "\n".join(_source(stem, "code"))
    assert "ctx.config(" not in code and "results_table(" not in code, \
        f"{stem} must run the configurations of its `reproduce` tables, not hand-built ones"


@pytest.mark.parametrize("stem", sorted({c.notebook for c in paper.CLAIMS}))
def test_notebooks_with_claims_print_computed_verdicts(stem):
    code = "\n".join(_source(stem, "code"))
    assert f'claims("{stem}")' in code or f'evidence_summary("{stem}")' in code, \
        f"{stem} shows claims of the paper: it must print their computed verdicts"


def test_no_markdown_states_a_run_result():
    offenders = {}
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        if not "02" <= path.name[:2] <= "11":
            continue
        found = [s for md in _source(path.stem, "markdown") for s in result_sentences(md)]
        if found:
            offenders[path.stem] = found
    assert not offenders, f"markdown that states what a run found (say what the paper claims instead): {offenders}"


def test_the_heuristics_catch_what_they_should():
    assert table_names('show_table("ladder", rows="x")\nexperiments.table(\'init\', p)') == {"ladder", "init"}
    assert result_sentences("The frozen LSTM beats the transformer here. The paper shows that it wins.") == \
        ["The frozen LSTM beats the transformer here."]


# -- the helpers the notebooks call -----------------------------------------------------------


@pytest.fixture
def ctx(tmp_path, monkeypatch):
    monkeypatch.setenv("FPT_RESULTS_DIR", str(tmp_path))
    return nb.NotebookContext(profile="quick", device="cpu", backbone="minilm", backbone_reason="test",
                              results_dir=tmp_path)


def _record(key: str, test: float = 0.9) -> dict:
    evals = [{"step": 10 * (i + 1), "val": {"accuracy": a}, "test": {"accuracy": t}}
             for i, (a, t) in enumerate(((0.6, 0.99), (0.9, test), (0.8, 0.5)))]
    return {"key": key, "backbone": {"name": "minilm", "init": "pretrained"}, "freeze": "fpt",
            "hyperparameters": {"lr": 1e-3}, "steps": 30, "seed": 0, "data_source": "generated bits",
            "task": "bit-xor", "evals": evals, "final": {"test": {"accuracy": 0.5}}}


def test_table_configs_select_rows_and_columns_of_the_same_definitions(ctx):
    every = experiments.table("ladder", "quick", "minilm")
    subset = nb.table_configs("ladder", rows="bit-xor pretrained", ctx=ctx)
    assert subset and all(c.row == "bit-xor pretrained" for c in subset)
    assert [c.key for c in subset] == [c.key for c in every if c.row == "bit-xor pretrained"]
    assert nb.table_configs("ladder", ctx=ctx) == every
    with pytest.raises(ValueError, match="its columns are"):
        nb.table_configs("init", columns="cifar100", ctx=ctx)


def test_show_table_renders_the_subset_with_baselines_and_says_so(ctx, monkeypatch):
    fpt = nb.table_configs("init", rows="language", columns="bit-xor", ctx=ctx)[0]
    stored = [_record(fpt.key)]
    monkeypatch.setattr(nb.results, "load", lambda *a, **k: stored)
    shown = nb.show_table("init", columns="bit-xor", ctx=ctx)
    runs = [r for r in shown.rows if not r["setting"].startswith("trivial baseline")]
    assert {r["column"] for r in runs} == {paper.TASK_TITLES["bit-xor"]}
    assert len(runs) == len(nb.table_configs("init", columns="bit-xor", ctx=ctx))
    language = next(r for r in runs if r["setting"] == "language")
    assert language["this run (%)"] == "90.0"         # test at the best-validation evaluation, not 99 nor 50
    assert any(r["setting"].startswith("trivial baseline") for r in shown.rows)
    assert any("only columns 'bit-xor'" in n for n in shown.notes)
    assert any(report.QUICK_NOTE in n for n in shown.notes)


def test_claims_at_quick_are_the_committed_evidences_verdicts(ctx, monkeypatch):
    """A quick notebook gives no verdict of its own: it shows the verdicts of the committed
    evidence (the evidence profile's store and backbone), which change with those records."""
    from test_claims import ARCH, record
    arch = {c.row: c for c in experiments.table("architecture", "evidence", experiments.EVIDENCE_BACKBONE)
            if c.seed == 0}
    seeds = {row: [c for c in experiments.table("architecture", "evidence", experiments.EVIDENCE_BACKBONE)
                   if c.row == row] for row in arch}
    asked = []

    def load(directory=None, *a, **k):
        asked.append(directory)
        return stored
    monkeypatch.setattr(report.results, "load", load)
    stored = [record(c, x, profile="evidence") for c, x in zip(seeds["frozen random transformer"], (0.9, 0.92, 0.91))] + \
             [record(c, x, profile="evidence") for c, x in zip(seeds["frozen random LSTM"], (0.84, 0.85, 0.86))]
    shown = nb.claims(ARCH.notebook, ctx=ctx)
    row = next(r for r in shown.rows if r["claim"] == ARCH.text)
    assert row["verdict"] == "frozen random transformer higher" and asked[-1] == files.committed_evidence_dir()
    assert any("committed evidence" in n for n in shown.notes)
    stored = stored[3:] + [record(c, x, profile="evidence") for c, x in zip(seeds["frozen random transformer"], (0.5, 0.5, 0.51))]
    assert next(r for r in nb.claims(ARCH.notebook, ctx=ctx).rows if r["claim"] == ARCH.text)["verdict"] == "frozen random transformer lower"
    stored = []
    assert {r["verdict"] for r in nb.claims("08_pretraining", ctx=ctx).rows} == {"not run here"}
    with pytest.raises(ValueError, match="known"):
        nb.claims("99_nowhere", ctx=ctx)


def test_show_evidence_reads_the_committed_cells_beside_a_quick_table(ctx, monkeypatch):
    cfg = nb._subset_configs("init", "evidence", experiments.EVIDENCE_BACKBONE, "language", "bit-xor")
    stored = [{**_record(c.key), "seed": c.seed} for c in cfg]
    asked = []

    def load(directory=None, *a, **k):
        asked.append(directory)
        return stored
    monkeypatch.setattr(nb.results, "load", load)
    shown = nb.show_evidence("init", rows="language", columns="bit-xor", ctx=ctx)
    assert asked == [files.committed_evidence_dir()]
    run = next(r for r in shown.rows if r["setting"] == "language")
    assert run["this run (%)"] == "90.0 ± 0.0" and run["seeds"] == len(cfg) == 3
    assert shown.title.startswith("Committed evidence") and "profile `evidence`" in shown.title
    assert "nothing is trained by this cell" in shown.notes[0] and "1 of 1 cells" in shown.notes[0]
    at_evidence = dataclasses.replace(ctx, profile="evidence")
    assert "the table above is the evidence" in nb.show_evidence("init", ctx=at_evidence)


@pytest.mark.parametrize("stem", sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")))
def test_notebook_code_compiles(stem):
    """Every code cell is valid Python on this interpreter (IPython magics and shell lines aside):
    a syntax error shows here, without executing the notebook."""
    for i, code in enumerate(_source(stem, "code")):
        plain = "\n".join(line[:len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith(("%", "!"))
                          else line for line in code.splitlines())
        compile(plain, f"{stem} cell {i}", "exec")


def test_the_committed_evidence_is_the_courses_wherever_the_learners_store_is(monkeypatch, tmp_path):
    """show_evidence and the quick notebooks' claims read the course's committed records: the
    checkout's results/evidence/, and in an installed wheel (Colab, no checkout) the copy the wheel
    carries as fptlib/evidence/; a learner's own store ($FPT_RESULTS_DIR, Google Drive) never hides them."""
    root = files.repo_root()
    monkeypatch.setenv("FPT_RESULTS_DIR", str(tmp_path / "drive"))
    assert files.committed_evidence_dir() == root / "results" / "evidence"
    assert experiments.store_dir("evidence") == tmp_path / "drive" / "evidence"     # where the learner's runs go
    monkeypatch.setattr(files, "repo_root", lambda: None)                         # an installed copy
    assert files.committed_evidence_dir() == files.PACKAGE_DIR / "evidence" == files.PACKAGED_EVIDENCE


def test_every_package_of_fptlib_is_listed_for_the_wheel():
    """pyproject.toml lists fptlib's packages (it must, to map results/evidence/ into the wheel): a
    new subpackage left out of that list would be missing from the wheel a Colab user installs."""
    import tomllib
    conf = tomllib.loads((files.repo_root() / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(p.parent.relative_to(files.PACKAGE_DIR.parent).parts)
             for p in files.PACKAGE_DIR.rglob("__init__.py") if "__pycache__" not in p.parts}
    evidence = {"fptlib.evidence", "fptlib.evidence.weights"}    # data packages: results/evidence/ and its weights/
    assert found | evidence == set(conf["packages"])
    assert conf["package-dir"]["fptlib.evidence"] == "results/evidence"
    assert conf["package-data"]["fptlib.evidence.weights"] == ["*.pt"]
