"""The command line: train --json, reproduce (end to end, then skipping finished runs), sweep,
results, demo, and clear errors."""
import json

import pytest

from fptlib.cli import main
from fptlib import stats, sweeps as sweep
from test_train_toy import one_thread, tiny_config  # noqa: F401

TINY = ["--backbone", "gpt2", "--backbone-override", "n_layer=2", "--backbone-override", "n_embd=32",
        "--backbone-override", "n_head=2"]


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("FPT_RESULTS_DIR", str(tmp_path))
    return tmp_path


def test_train_json_prints_the_record(store, capsys):
    code = main(["train", "--task", "bit-xor", *TINY, "--init", "random", "--steps", "4", "--eval-every", "2",
                 "--option", "n=3", "--json", "--no-progress"])
    assert code == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["task"] == "bit-xor" and rec["backbone"] == {**rec["backbone"], "name": "gpt2", "init": "random"}
    assert rec["steps"] == 4 and [e["step"] for e in rec["evals"]] == [2, 4]
    assert "length 3" in rec["data_source"] and rec["hardware"].startswith("cpu")
    assert rec["amp"] == "off" and rec["compile"] == "off"          # auto: neither on a CPU
    assert (store / f"{rec['key']}.json").is_file()


def test_reproduce_runs_a_table_then_skips_finished_runs(store, capsys):
    argv = ["reproduce", "architecture", "--profile", "quick", "--steps", "2", *TINY, "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("running") == 2 and "| frozen random LSTM | CIFAR-10 | 34.0 |" in out
    records = sorted(store.glob("*.json"))
    assert len(records) == 2
    stamps = [p.stat().st_mtime_ns for p in records]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("done already") == 2 and "running" not in out
    assert [p.stat().st_mtime_ns for p in records] == stamps
    assert main(["results", "architecture", "--profile", "quick", "--backbone", "gpt2"]) == 0
    assert "not run" in capsys.readouterr().out      # those runs had 2 steps, not the profile's


def test_sweep_command_prints_the_selection(store, capsys):
    assert main(["sweep", "--task", "bit-xor", *TINY, "--init", "random", "--steps", "2", "--eval-every", "1",
                 "--lrs", "1e-3", "3e-3", "--seeds", "0", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "| 0.001" in out and "| 0.003" in out and out.count("**chosen**") == 1
    assert len(list(store.glob("*.json"))) == 2
    assert "packing 2 runs" in out                    # default: compatible runs train as one pack


def test_pack_flags_choose_packing_or_not(store, capsys):
    base = ["sweep", "--task", "bit-xor", *TINY, "--init", "random", "--steps", "2", "--eval-every", "1",
            "--lrs", "1e-3", "3e-3", "--seeds", "0", "--no-progress"]
    assert main([*base, "--no-pack"]) == 0
    assert "packing" not in capsys.readouterr().out
    assert main([*base, "--lrs", "1e-4", "2e-4", "--pack", "2"]) == 0
    assert "packing 2 runs" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([*base, "--pack", "2", "--no-pack"])


def test_sweep_selects_on_validation(tmp_path):
    res = sweep.sweep(tiny_config(steps=4, eval_every=2), lrs=(1e-3, 3e-2), seeds=(0,), directory=tmp_path,
                      progress=False, log=lambda *_: None)
    assert [r["lr"] for r in res.rows] == [1e-3, 3e-2]
    assert res.best_lr == max(res.rows, key=lambda r: r["val_mean"])["lr"]
    assert "**chosen**" in res.markdown()
    rec = {"key": "k", "evals": [{"step": 2, "val": {"accuracy": 0.9}, "test": {"accuracy": 0.5}},
                                 {"step": 4, "val": {"accuracy": 0.7}, "test": {"accuracy": 0.99}}]}
    chosen = stats.selected(rec)                             # the sweeps' one selection rule
    assert (chosen.selected, chosen.reported, chosen.step) == (0.9, 0.5, 2)   # the test number never picks
    with pytest.raises(ValueError, match="no evaluation with both 'val' and 'test'"):
        stats.selected({"key": "k", "evals": []})


def test_demo_trains_and_saves_an_attention_picture(store, tmp_path, capsys):
    out = tmp_path / "pics" / "attn.png"
    assert main(["demo", *TINY[:2], "--steps", "3", "--out", str(out), "--no-progress"]) == 1   # gpt2 offline
    capsys.readouterr()
    assert main(["demo", "--backbone", "minilm", "--steps", "3", "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "final test accuracy" in text and str(out) in text
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not list(out.parent.glob("*.tmp"))


def test_bad_arguments_are_clear_errors(store, capsys):
    assert main(["reproduce", "table9"]) == 1
    assert "unknown experiment table 'table9'" in capsys.readouterr().err
    assert main(["train", "--task", "bit-xor", "--option", "n"]) == 1
    assert "NAME=VALUE" in capsys.readouterr().err
    assert main(["train", "--task", "nope", "--backbone", "minilm"]) == 1
    assert "known tasks" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--task", "bit-xor", "--compile", "fast"])
    assert "invalid choice: 'fast'" in capsys.readouterr().err


def test_train_with_mlp_heads_from_the_command_line(store, capsys):
    code = main(["train", "--task", "bit-xor", *TINY, "--init", "random", "--steps", "2", "--eval-every", "0",
                 "--option", "n=3", "--in-layers", "16", "8", "--out-layers", "12", "--json", "--no-progress"])
    assert code == 0
    rec = json.loads(capsys.readouterr().out)
    run = rec["run_config"]
    assert run["in_layers"] == [16, 8] and run["out_layers"] == [12]
    from fptlib import experiments

    plain = experiments.RunConfig(**{k: v for k, v in run.items() if k not in ("key", "in_layers", "out_layers")})
    assert plain.key != rec["key"]          # the heads are part of the run's identity
    # a run without heads keeps the key it had before the heads existed (stored results stay valid)
    headless = experiments.RunConfig(task="bit-xor", backbone="gpt2")
    assert not {"in_layers", "out_layers"} & set(headless.identity())


def test_reproduce_retrains_only_the_runs_whose_weights_are_missing(store, capsys):
    argv = ["reproduce", "attention", "--profile", "quick", "--steps", "2", *TINY, "--no-progress"]
    assert main(argv) == 0
    capsys.readouterr()
    weights = sorted((store / "weights").glob("*.pt"))
    assert len(weights) == len(list(store.glob("*.json"))) >= 2
    gone = weights[0]
    gone.unlink()                              # a clone: only some weights were committed
    record = store / f"{gone.stem}.json"       # as if another table had run it first: its label stays
    first = {**json.loads(record.read_text()), "label": {"table": "init", "row": "random", "column": "bit-xor"}}
    record.write_text(json.dumps(first))
    stamps = {p.name: p.stat().st_mtime_ns for p in store.glob("*.json")}
    runs = len(stamps)                         # (offline, the pretrained GPT-2 runs are skipped)
    assert main(argv) == 0                     # without the flag: a record is enough
    assert capsys.readouterr().out.count("done already") == runs and not gone.exists()
    assert main(argv + ["--retrain-weightless"]) == 0
    out = capsys.readouterr().out
    assert "1 stored runs have no trained weights here" in out and out.count("done already") == runs - 1
    assert gone.is_file()                      # trained again, its weights kept
    changed = [n for n, t in stamps.items() if (store / n).stat().st_mtime_ns != t]
    assert changed == [f"{gone.stem}.json"]    # only its record was replaced
    again = json.loads(record.read_text())
    assert again["label"] == first["label"] and again["weights"] == gone.name


def test_run_many_weightless_trains_again_only_runs_without_their_weights(store, one_thread):  # noqa: F811
    from fptlib import experiments
    from fptlib.experiments.many import WEIGHTLESS
    configs = [experiments.config("bit-xor", "quick", "gpt2", init="random", steps=2, seed=s,
                                  backbone_overrides=(("n_layer", 1), ("n_embd", 16), ("n_head", 2))) for s in (0, 1)]
    first = experiments.run_many(configs, progress=False, log=lambda m: None)
    (store / "weights" / f"{configs[1].key}.pt").unlink()
    stamp = (store / f"{configs[0].key}.json").stat().st_mtime_ns
    again = experiments.run_many(configs, progress=False, log=lambda m: None, force=WEIGHTLESS, save_weights=True)
    assert (store / f"{configs[0].key}.json").stat().st_mtime_ns == stamp  # its weights are here: read, not trained
    assert again[0]["created_at"] == first[0]["created_at"]
    assert (store / "weights" / f"{configs[1].key}.pt").is_file()        # trained again, weights kept
    assert again[1]["final"]["test"]["accuracy"] == first[1]["final"]["test"]["accuracy"]
