"""bench/colab_estimate.py: the arithmetic of its T4 estimate on hand-made numbers, and its
notebook -> runs mapping against the notebooks themselves. Nothing is trained."""
from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

from fptlib import experiments, tasks

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("colab_estimate", ROOT / "bench" / "colab_estimate.py")
est = importlib.util.module_from_spec(spec)
sys.modules["colab_estimate"] = est
spec.loader.exec_module(est)

# calls that train (or load) runs of the results store; 01's 20-step Trainer demo is not one
TRAINS = re.compile(r"\b(run_table|run|run_many|xor_models|sweep_each)\(")
A = est.Assumptions(floor_s=0.03, eval_floor_s=0.01, peak=1e13, mfu=0.5, overhead_s=0.0)


def code(notebook: str) -> str:
    cells = json.loads((ROOT / "notebooks" / f"{notebook}.ipynb").read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def test_run_seconds_by_hand():
    # 100 steps x (30 ms + 1e12 / (1e13 x 0.5) = 200 ms) + 10 eval batches x (10 ms + 200 ms)
    c = est.Cost(steps=100, step_flops=1e12, eval_batches=10, eval_flops=1e12)
    assert est.run_seconds(c, A) == pytest.approx(100 * 0.23 + 10 * 0.21)
    assert est.run_seconds(c, est.Assumptions(**{**A.__dict__, "overhead_s": 5.0})) == pytest.approx(23 + 2.1 + 5)


def test_doubling_steps_doubles_the_training_time():
    one, two = (est.Cost(steps=s, step_flops=3e11, eval_batches=0, eval_flops=0.0) for s in (100, 200))
    assert est.run_seconds(two, A) == pytest.approx(2 * est.run_seconds(one, A))


def test_a_pack_of_k_divides_only_the_launch_part_by_k():
    c = est.Cost(steps=100, step_flops=1e12, eval_batches=4, eval_flops=1e12)
    for k in (2, 3, 8):
        saved = est.run_seconds(c, A) - est.run_seconds(c, A, pack=k)
        assert saved == pytest.approx(100 * 0.03 * (1 - 1 / k))     # FLOPs and evaluations unchanged


def test_every_notebook_that_trains_has_a_row():
    training = {p.stem for p in sorted((ROOT / "notebooks").glob("*.ipynb")) if TRAINS.search(code(p.stem))}
    assert training == set(est.NOTEBOOKS)


@pytest.mark.parametrize("notebook", list(est.NOTEBOOKS))
def test_the_mapping_is_what_the_notebook_calls(notebook):
    src = code(notebook)
    called = set(re.findall(r'run_table\(\s*"(\w+)"', src))
    # tables and run sets a notebook trains with run_table (the explorer's "attention": xor_models, below)
    named = {t for t, _ in est.NOTEBOOKS[notebook] if t in experiments.names(run_sets=True) and t != "attention"}
    assert named <= called
    for _, subset in est.NOTEBOOKS[notebook]:
        if "columns" in subset:
            assert f'columns="{subset["columns"]}"' in src
    # a run_table call left out is a cell that the evidence profile's table does not have (07's homology)
    for t in called - named:
        asked = set(re.findall(r'columns="([\w-]+)"', src))
        assert not asked & {c.column for c in experiments.table(t, "evidence", "gpt2")}
    if "homology" in dict(est.NOTEBOOKS[notebook]):
        assert 'ctx.config("homology")' in src
    if "attention" in dict(est.NOTEBOOKS[notebook]):
        assert "xor_models(" in src


def test_notebook_runs_are_distinct_and_include_bit_memory_pretraining():
    configs = est.notebook_configs("08_pretraining")
    assert len({c.key for c in configs}) == len(configs)
    assert any(c.row == "Bit Memory pretraining" for c in configs)
    assert all(c.profile == "evidence" and c.backbone in ("gpt2", "lstm") for c in configs)


def test_choose_profile_says_what_the_estimate_computes():
    ready = tasks.available()
    if not all(ready[t]["ready"] for t in ("mnist-5k", "fashion-mnist", "digits")):
        pytest.skip("the evidence profile's image data is not on this machine")
    rows = {r["notebook"]: r for r in est.estimate(est.Assumptions())}
    doc = " ".join(experiments.choose_profile.__doc__.split())
    over = [nb for nb, r in rows.items() if r["alone"] > est.LONG_MINUTES]
    assert over == [] and "for every notebook: the longest, 10" in doc
    r = rows["10_parameters"]
    assert r["packed"] <= est.LONG_MINUTES and r["alone"] == max(x["alone"] for x in rows.values())
    assert f"{r['alone']:.0f} minutes one run at a time" in doc and f"{r['packed']:.0f} with the seeds packed" in doc
