"""One bad file never breaks the store: a JSON list, a record without a key, a truncated record
are each skipped with a warning on stderr naming the file; tables and reproduce keep working."""
import json

from fptlib import experiments, report, results
from fptlib.cli import main
from test_train_toy import TINY_GPT2, one_thread  # noqa: F401

GOOD = {"format": 1, "key": "good-run", "task": "bit-xor", "data_source": "generated", "steps": 3,
        "seed": 0, "final": {"test": {"accuracy": 0.5, "loss": 0.7}}, "best": {}, "evals": [],
        "backbone": {"name": "gpt2", "init": "random"}, "created_at": "2026-01-01T00:00:00+00:00"}


def _bad_files(folder):
    (folder / "a-list.json").write_text("[1, 2, 3]")
    (folder / "no-key.json").write_text(json.dumps({**GOOD, "key": None}))
    (folder / "truncated.json").write_text(json.dumps(GOOD)[:40])
    (folder / "number-key.json").write_text(json.dumps({**GOOD, "key": 7}))
    return ("a-list.json", "no-key.json", "truncated.json", "number-key.json")


def test_load_skips_each_bad_file_with_a_warning_naming_it(tmp_path, capsys):
    results.save(GOOD, tmp_path)
    names = _bad_files(tmp_path)
    assert [r["key"] for r in results.load(tmp_path)] == ["good-run"]
    err = capsys.readouterr().err
    for name in names:
        assert str(tmp_path / name) in err, name
    assert err.count("warning") == len(names)


def test_get_of_a_truncated_record_warns_and_counts_as_missing(tmp_path, capsys):
    (tmp_path / "good-run.json").write_text(json.dumps(GOOD)[:40])
    assert results.get("good-run", tmp_path) is None
    assert str(tmp_path / "good-run.json") in capsys.readouterr().err
    (tmp_path / "good-run.json").write_text("[]")
    assert results.get("good-run", tmp_path) is None
    assert "a JSON list" in capsys.readouterr().err


def test_results_command_and_tables_survive_bad_files(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FPT_RESULTS_DIR", str(tmp_path))
    results.save(GOOD, tmp_path)
    _bad_files(tmp_path)
    assert main(["results"]) == 0
    assert "good-run" in capsys.readouterr().out
    assert main(["results", "architecture", "--backbone", "gpt2"]) == 0
    assert "not run" in capsys.readouterr().out


def test_reproduce_survives_bad_files_and_retrains_a_truncated_record(tmp_path, capsys):
    changes = dict(steps=2, backbone_overrides=TINY_GPT2)
    cfg = experiments.table("architecture", "quick", "gpt2", **changes)[0]
    _bad_files(tmp_path)
    (tmp_path / f"{cfg.key}.json").write_text(json.dumps({**GOOD, "key": cfg.key})[:50])
    records = experiments.reproduce("architecture", "quick", backbone="gpt2", directory=tmp_path,
                                    progress=False, log=lambda *_: None, **changes)
    assert len(records) == 2 and records[0]["key"] == cfg.key and records[0]["steps"] == 2
    assert json.loads((tmp_path / f"{cfg.key}.json").read_text())["steps"] == 2      # rewritten whole
    md = report.paper_table("architecture", "quick", directory=tmp_path, backbone="gpt2", **changes).markdown()
    assert "not run" not in md
