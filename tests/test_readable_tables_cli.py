"""Issue 28, items 3 and 4: tables a person can read (short claim rows, provenance once per setting,
`results` views that fit a 100-column terminal, lr and seed columns) and a command line that says
its defaults, refuses what it would ignore, and prints honest progress."""
import argparse
import dataclasses
import re

import pytest

from fptlib import experiments, paper, report
from fptlib.cli import DefaultsHelpFormatter, build_parser, main
from fptlib.tasks.listops import ListOps
from fptlib.train import packed
from test_claims import ARCH, by_row, claim_row, record, seeded  # noqa: F401
from test_cli_train import TINY

WIDTH = report.TERMINAL_WIDTH


def lines_of(text: str) -> list[str]:
    return text.splitlines()


# -- item 3: readable tables ---------------------------------------------------------------------

def test_the_terminal_view_wraps_cells_to_the_width_and_keeps_every_word():
    long = "a setting described at length " * 8
    t = report.Table([{"claim": long, "n": 3, "where": "notebooks/02_bit_memory.ipynb"}],
                     title="A title", notes=["a remark " * 30])
    text = t.text(60)
    assert max(map(len, lines_of(text))) <= 60
    assert len(lines_of(text)) > 6                                   # wrapped, not cut
    assert text.count("described") == 8 and text.count("remark") == 30
    assert "| claim |" in t.markdown() and long in t.markdown()     # markdown unchanged: one line per row


def test_claims_rows_are_short_and_each_setting_is_described_once(seeded):
    rows = by_row(seeded(seeds=(0, 1, 2)))
    tf, lstm = rows["frozen random transformer"], rows["frozen random LSTM"]
    recs = [record(c, x) for c, x in zip(tf, (0.70, 0.71, 0.72))] + \
           [record(c, x) for c, x in zip(lstm, (0.40, 0.41, 0.42))]
    table = report.claims("full", records=recs, backbone="minilm")
    md = table.markdown()
    row = claim_row(table, ARCH)
    assert re.fullmatch(r"71\.0 ± 1\.0 \(3\) \[(\d+)\] vs 41\.0 ± 1\.0 \(3\) \[(\d+)\]", row[report.CLAIM_OURS])
    line = next(l for l in lines_of(md) if l.startswith(f"| {ARCH.text} |"))
    assert len(line) < 300 and "seeds 0, 1, 2" not in line and "data of" not in line
    # what produced each setting: once, in the notes, with the number the row refers to
    ref = re.search(r"\[(\d+)\] vs", row[report.CLAIM_OURS]).group(1)
    note = next(l for l in lines_of(md) if l.startswith(f"- [{ref}] "))
    assert "frozen random transformer, CIFAR-10" in note     # its label here (and any other table's name for it)
    assert "minilm (random), freeze fpt, lr 0.001, 100 steps, seeds 0, 1, 2" in note
    assert len([l for l in lines_of(md) if "minilm (random), freeze fpt, lr 0.001, 100 steps" in l]) == 1
    assert md.count(f"data of {tf[0].task}") == 1                  # the data source once per task
    assert list(table.columns) == list(report.CLAIM_COLUMNS)          # the reasons: in the wide view
    assert "why (computed from the records)" in report.Table(table.rows).markdown()


def test_a_notebooks_claims_describe_only_their_own_settings(seeded):
    rows = by_row(seeded(seeds=(0, 1, 2)))
    recs = [record(c, 0.7) for c in rows["frozen random transformer"]] + \
           [record(c, 0.4) for c in rows["frozen random LSTM"]]
    every = report.claims("full", records=recs, backbone="minilm")
    mine = report.claims("full", records=recs, backbone="minilm", notebook=ARCH.notebook)
    assert {r["claim"] for r in mine.rows} == {c.text for c in paper.CLAIMS if c.notebook == ARCH.notebook}
    assert claim_row(mine, ARCH)[report.CLAIM_OURS].endswith("[2]")          # numbered within the notebook
    first = next(n for n in mine.notes if n.startswith("- [1] "))
    assert first.startswith("- [1] frozen random transformer, CIFAR-10: minilm (random)")
    # in the whole table the same runs also carry the other claims' names for them
    assert " = frozen random transformer, CIFAR-10" in next(n for n in every.notes if "minilm (random), freeze fpt" in n)


def test_results_lists_lr_and_seed_fits_100_columns_and_has_a_wide_view(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FPT_RESULTS_DIR", str(tmp_path))
    from fptlib import results
    cfgs = experiments.table("architecture", "quick", "minilm")
    for c, lr in zip(cfgs, (1e-3, 3e-4)):
        results.save({**record(dataclasses.replace(c, lr=lr), 0.5, profile="quick"),
                      "hardware": "cpu: x86_64, 1 threads, 2 cores",
                      "data_source": "a long description of the data " * 5}, tmp_path)
    assert main(["results"]) == 0
    out = capsys.readouterr().out
    assert max(map(len, lines_of(out))) <= WIDTH
    head = lines_of(out)[0].split()
    assert "lr" in head and "seed" in head and "0.0003" in out and "hardware" not in out
    assert "Records of the quick profile are a check that the code runs, not evidence." in " ".join(out.split())
    assert "Quick-profile records are quick profile" not in out
    assert main(["results", "--wide"]) == 0
    wide = capsys.readouterr().out
    assert "| hardware |" in wide.replace("hardware | key", "hardware |") and "data source" in wide


def test_results_claims_defaults_to_the_committed_evidence_and_fits_100_columns(monkeypatch, capsys):
    monkeypatch.delenv("FPT_RESULTS_DIR", raising=False)
    monkeypatch.delenv("FPT_PROFILE", raising=False)
    assert main(["results", "--claims"]) == 0
    captured = capsys.readouterr()
    assert f"profile: evidence, backbone {experiments.EVIDENCE_BACKBONE}" in captured.err
    out = captured.out
    assert "(profile `evidence`)" in out and max(map(len, lines_of(out))) <= WIDTH
    assert main(["results", "--claims", "--markdown"]) == 0
    md = capsys.readouterr().out
    assert len(re.findall(r"\(3\) \[\d+\] vs", md)) >= 10                # committed runs, not "not run here"
    for view in (["table1", "--profile", "evidence"], ["--progress", "--profile", "evidence"]):
        assert main(["results", *view, "--backbone", experiments.EVIDENCE_BACKBONE]) == 0
        assert max(map(len, lines_of(capsys.readouterr().out))) <= WIDTH, view


def test_the_readme_claims_rows_are_short():
    from pathlib import Path
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index("<!-- claims:begin -->"): readme.index("<!-- claims:end -->")]
    rows = [l for l in lines_of(block) if l.startswith("| ") and not l.startswith("| claim |")]
    assert len(rows) >= 10 and max(map(len, rows)) < 400          # was 494-1,049 characters a cell
    assert block.count("validation carved from train") == 1     # each data source once, in the notes


# -- item 4: the command line ----------------------------------------------------------------------

def _subcommands():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


FLAGS = (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._HelpAction, argparse._CountAction)


def test_every_option_of_every_command_has_help_and_shows_its_default():
    missing = []
    for name, command in _subcommands().items():
        formatter = DefaultsHelpFormatter(name)
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            shown = formatter._get_help_string(action) % {"default": action.default, "prog": name}
            if not action.help:
                missing.append(f"{name} {action.option_strings or action.dest}: no help")
            elif (action.option_strings and not isinstance(action, FLAGS) and not action.required
                  and "default" not in shown):
                missing.append(f"{name} {action.option_strings}: no default shown")
    assert not missing, missing
    assert "(default: 300)" in _subcommands()["demo"].format_help()
    assert "(default: 0 1 2)" in _subcommands()["sweep"].format_help()


@pytest.mark.parametrize("flag, value, instead", [("--lr", "0.01", "--lrs"), ("--seed", "3", "--seeds")])
def test_sweep_refuses_the_lr_and_seed_it_would_ignore(tmp_path, monkeypatch, capsys, flag, value, instead):
    monkeypatch.setenv("FPT_RESULTS_DIR", str(tmp_path))
    assert main(["sweep", "--task", "bit-xor", *TINY, "--steps", "2", flag, value, "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert flag in err and instead in err and not list(tmp_path.glob("*.json"))      # nothing trained


def test_a_sweep_title_names_no_single_lr_or_seed():
    cfg = experiments.config("bit-xor", "quick", "minilm", lr=1e-3, seed=0)
    assert "lr 0.001" in cfg.describe() and "seed 0" in cfg.describe()
    assert "lr" not in cfg.describe(sweep=True).split("|")[-1] and "seed" not in cfg.describe(sweep=True)


def test_short_corrected_listops_is_sized_by_its_data_not_by_the_cap(tmp_path):
    from fpt_testing import tiny_backbone
    from fptlib.model import FrozenPretrainedTransformer as FPT
    task = ListOps(tokenization="corrected", source="generated", min_length=20, max_length=60, n_train=20,
                   n_val=5, n_test=5, data_dir=str(tmp_path))
    assert task.max_len == 2000                        # the cap that cuts longer sequences
    longest = task.model_kwargs()["max_len"]
    assert 20 < longest < 60
    model = FPT.for_task(task, tiny_backbone("gpt2"))  # 64 positions: no "sequences of 2000 tokens exceed"
    assert model.max_len == longest


def test_the_feature_cache_bar_has_a_total(tmp_path, capsys):
    from fpt_testing import tiny_backbone
    from fptlib.model import FrozenPretrainedTransformer as FPT
    from fptlib.train import TrainConfig
    from fptlib.train.features import fit_output_only
    task = ListOps(source="generated", min_length=20, max_length=60, n_train=40, n_val=5, n_test=5,
                   data_dir=str(tmp_path))
    model = FPT.for_task(task, tiny_backbone("gpt2"), freeze="output_only")
    fit_output_only(model, task, TrainConfig(steps=2, batch_size=8, eval_every=0, eval_batch_size=16,
                                             device="cpu", progress=True, compile=False))
    err = capsys.readouterr().err
    assert re.search(r"caching features: .*\b0/3\b", err), err[-500:]     # ceil(40 / 16) batches


def _tiny(lr, **changes):         # runs of one pack group: they differ in lr only
    return experiments.config("bit-xor", "quick", "gpt2", init="random", lr=lr, steps=4, eval_every=2,
                              backbone_overrides=(("n_embd", 32), ("n_head", 2), ("n_layer", 1)), **changes)


def test_a_packed_bar_prints_its_last_line_once(tmp_path, capsys):
    said = []
    experiments.run_many([_tiny(1e-3), _tiny(3e-3)], pack=2, directory=tmp_path, progress=True, log=said.append)
    shown = re.split(r"[\r\n]", capsys.readouterr().err)
    assert said[0].startswith("packing 2 runs") and len([s for s in shown if "x2: 100%" in s]) == 1, shown


def test_auto_packing_says_nothing_of_runs_it_cannot_pack(tmp_path):
    full = [_tiny(lr, freeze="full") for lr in (1e-3, 3e-3)]        # trains the backbone: no shared frozen part
    said = []
    experiments.run_many(full, pack="auto", directory=tmp_path, progress=False, log=said.append)
    assert not any("pack" in s for s in said), said
    said.clear()
    experiments.run_many(full, pack=2, directory=tmp_path, progress=False, log=said.append, force=True)
    assert any(s.startswith("cannot pack them") for s in said), said


def test_auto_packing_on_a_cpu_only_where_it_was_measured_faster(tmp_path):
    limit = packed.CPU_PACK_MAX_TOKENS
    assert packed.auto_pack_size(4, "cpu", tokens=limit) == packed.CPU_AUTO_PACK
    assert packed.auto_pack_size(4, "cpu", tokens=limit + 1) == 1
    for n, packs in ((limit // 2, True), (limit // 2 + 1, False)):    # Bit XOR: 2n tokens
        said = []
        experiments.run_many([_tiny(lr, task_options={"n": n}) for lr in (1e-3, 3e-3)], pack="auto", device="cpu",
                             directory=tmp_path / str(n), progress=False, log=said.append)
        assert any(s.startswith("packing 2 runs") for s in said) == packs, (n, said)
