"""No silent wrong result and no raw traceback from the command line: the run key follows the
data source, resume refuses any difference, bad overrides and counts are refused, Ctrl-C tells
how to resume, and --extend-positions is reachable."""
import dataclasses
from pathlib import Path

import pytest

from fptlib import experiments
from fptlib.cli import main
from fptlib.train.checkpoint import TrainingInterrupted
from test_train_toy import one_thread, tiny_config  # noqa: F401

TINY = ["--backbone", "gpt2", "--backbone-override", "n_layer=2", "--backbone-override", "n_embd=32",
        "--backbone-override", "n_head=2"]
RUN = ["train", "--task", "bit-xor", *TINY, "--init", "random", "--option", "n=3", "--eval-every", "2",
       "--no-progress", "--no-store"]


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("FPT_RESULTS_DIR", str(tmp_path / "results"))
    return tmp_path / "results"


def test_run_key_follows_the_listops_data_source(tmp_path, monkeypatch):
    monkeypatch.setenv("FPT_DATA_DIR", str(tmp_path / "data"))
    auto = experiments.config("listops", "quick", "minilm")
    generated = dataclasses.replace(auto, task_options=(*auto.task_options, ("source", "generated")))
    before, explicit = auto.key, generated.key
    folder = tmp_path / "data" / "lra_release" / "listops-1000"
    folder.mkdir(parents=True)
    for name in ("basic_train.tsv", "basic_val.tsv", "basic_test.tsv"):
        (folder / name).write_text("Source\tTarget\n")
    assert auto.key != before                      # now it would read LRA's files: another run
    assert generated.key == explicit               # the source was fixed by the options
    # tasks whose data the options fix keep their keys (stored results stay valid)
    assert "data" not in experiments.config("bit-xor", "quick", "minilm").identity()     # key as before


def test_resume_refuses_another_dropout_and_a_checkpoint_past_the_steps(store, tmp_path, capsys):
    ckpt = ["--checkpoint-dir", str(tmp_path / "ck")]
    assert main([*RUN, "--steps", "4", *ckpt]) == 0
    capsys.readouterr()
    assert main([*RUN, "--steps", "4", "--dropout", "0.3", *ckpt]) == 1
    err = capsys.readouterr().err
    assert "dropout: 0.1 in the checkpoint, 0.3 now" in err and "refusing to resume" in err
    assert main([*RUN, "--steps", "3", *ckpt]) == 1
    assert "past this run's steps=3" in capsys.readouterr().err


def test_backbone_override_typo_lists_the_config_keys_and_zero_layers_is_refused(store, capsys):
    assert main([*RUN, "--steps", "2", "--backbone-override", "n_layr=1"]) == 1
    err = capsys.readouterr().err
    assert "n_layr" in err and "n_layer" in err and "n_embd" in err
    assert main([*RUN, "--steps", "2", "--backbone-override", "n_layer=0"]) == 1
    assert "n_layer=0" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["reproduce", "architecture", "--steps", "0"],
                                  ["train", "--task", "bit-xor", "--steps", "0"],
                                  ["describe", "--backbone", "gpt2", "--init", "random", "--vocab", "0"]])
def test_zero_counts_are_refused(store, capsys, argv):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and "positive integer" in capsys.readouterr().err


def test_init_lists_its_four_choices(store, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--task", "bit-xor", "--init", "pretrianed"])
    err = capsys.readouterr().err
    assert all(c in err for c in ("'pretrained'", "'random'", "'statistics'", "'bit-memory'"))


def test_demo_out_a_folder_fails_before_training(store, tmp_path, capsys, monkeypatch):
    trained = []
    monkeypatch.setattr(experiments, "train", lambda *a, **k: trained.append(1))
    assert main(["demo", "--backbone", "gpt2", "--steps", "2", "--out", str(tmp_path), "--no-progress"]) == 1
    assert str(tmp_path) in capsys.readouterr().err and not trained


def test_extend_positions_flag_lets_a_longer_input_train(store, capsys):
    short = [*RUN, "--steps", "2", "--backbone-override", "n_positions=4"]
    assert main(short) == 1
    assert "--extend-positions" in capsys.readouterr().err
    assert main([*short, "--extend-positions"]) == 0


def test_ctrl_c_says_where_it_stopped_and_how_to_resume(store, tmp_path, capsys, monkeypatch):
    def interrupted(*a, **k):
        raise TrainingInterrupted(7, Path(tmp_path / "ck" / "checkpoint.pt"))
    monkeypatch.setattr(experiments, "train", interrupted)
    argv = [*RUN, "--steps", "20", "--checkpoint-dir", str(tmp_path / "ck")]
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert "interrupted at step 7; resume with: python -m fptlib train --task bit-xor" in err
    assert "Traceback" not in err


def test_an_unknown_init_lists_all_four():
    with pytest.raises(ValueError, match="pretrained, random, statistics, bit-memory"):
        experiments.build(tiny_config(init="bitmemory"))
