"""ListOps: generator, evaluator, LRA TSV files, both tokenizations, padding and bucketing."""
import itertools
import random
import statistics

import pytest
import torch

from fptlib.tasks import listops as lo
from fptlib.tasks.sampling import StepSampler, bucketed_batches

OPS = {"[MIN": min, "[MAX": max, "[SM": lambda a: sum(a) % 10,
       "[MED": lambda a: int(statistics.median(a))}


def reference_value(source: str) -> int:
    """An independent recursive-descent evaluator of an LRA source string."""
    tokens = [t for t in source.split() if t not in "()"]

    def parse(i):
        tok = tokens[i]
        if tok.isdigit():
            return int(tok), i + 1
        args, i = [], i + 1
        while tokens[i] != "]":
            value, i = parse(i)
            args.append(value)
        return OPS[tok](args), i + 1

    value, end = parse(0)
    assert end == len(tokens)
    return value


def count_tokens(source: str) -> int:
    return sum(t not in ("(", ")") for t in source.split())


def test_evaluator_agrees_with_independent_recursive_evaluation():
    examples = lo.generate_examples(400, seed=5, min_length=10, max_length=120)
    examples += lo.generate_examples(10, seed=6)                       # LRA's window 500-2000
    for source, label in examples:
        assert label == reference_value(source) == lo.evaluate(source)
    labels = {label for _, label in examples}
    assert len(labels) >= 8                                            # not a degenerate stream


def test_median_of_an_even_count_is_rounded_down_like_lra():
    assert lo.evaluate("[MED 1 2 ]") == 1
    assert lo.evaluate("[MED 3 8 9 0 ]") == 5
    assert lo.evaluate("[SM 9 9 [MAX 2 7 ] ]") == 5


def test_generated_lengths_respect_the_window_and_are_unique():
    rows = lo.generate_examples(300, seed=1, min_length=30, max_length=80)
    lengths = [count_tokens(s) for s, _ in rows]
    assert all(30 < n < 80 for n in lengths)
    assert min(lengths) < 45 and max(lengths) > 65                     # spans the window
    assert len({s for s, _ in rows}) == 300
    with pytest.raises(ValueError, match="window"):
        lo.generate_examples(1, seed=0, min_length=50, max_length=40)


def test_generator_writes_lra_parenthesised_format():
    tree = ("[MAX", [2, 9, ("[MIN", [4, 7])])
    assert lo.to_lra_string(tree) == "( ( ( ( [MAX 2 ) 9 ) ( ( ( [MIN 4 ) 7 ) ] ) ) ] )"
    assert lo.evaluate(lo.to_lra_string(tree)) == 9


LRA_ROWS = [("( ( ( [MAX 2 ) 9 ) ] )", 9),
            ("( ( ( ( [SM 3 ) ( ( ( [MED 1 ) 5 ) ] ) ) 8 ) ] )", 4),
            ("( ( ( ( [MIN 6 ) 1 ) ( ( ( [MAX 0 ) 3 ) ] ) ) ] )", 1)]


def test_tokenizations_round_trip_on_lra_tsv_examples(tmp_path):
    path = tmp_path / "basic_val.tsv"
    lo.write_tsv(path, LRA_ROWS)
    assert path.read_text().splitlines()[0] == "Source\tTarget"
    rows = lo.read_tsv(path)
    assert rows == LRA_ROWS
    close = lo.TOKENIZATIONS["corrected"].index("]")
    for source, target in rows:
        paper, fixed = lo.tokenize(source, "paper"), lo.tokenize(source, "corrected")
        assert lo.tokenize(lo.decode(paper, "paper"), "paper") == paper
        assert lo.tokenize(lo.decode(fixed, "corrected"), "corrected") == fixed
        assert lo.evaluate(lo.decode(fixed, "corrected")) == target      # ']' keeps the meaning
        assert [t for t in fixed if t != close] == paper                 # paper = corrected - ']'
        assert "]" not in lo.decode(paper, "paper") and "(" not in lo.decode(fixed, "corrected")
    assert lo.decode(lo.tokenize(LRA_ROWS[0][0], "paper"), "paper") == "[MAX 2 9"
    assert len(lo.vocabulary("paper")) == 15 and len(lo.vocabulary("corrected")) == 16


def test_malformed_tsv_names_file_and_line(tmp_path):
    bad_header = tmp_path / "a.tsv"
    bad_header.write_text("source\ttarget\n[MAX 1 ]\t1\n")
    with pytest.raises(ValueError, match=r"a\.tsv, line 1: expected the header"):
        lo.read_tsv(bad_header)
    bad_target = tmp_path / "b.tsv"
    bad_target.write_text("Source\tTarget\n( [MAX 1 ] )\t3\n( [MIN 1 ] )\t12\n")
    with pytest.raises(ValueError, match=r"b\.tsv, line 3: target '12'"):
        lo.read_tsv(bad_target)
    bad_fields = tmp_path / "c.tsv"
    bad_fields.write_text("Source\tTarget\n( [MAX 1 ] )\t1\textra\n")
    with pytest.raises(ValueError, match=r"c\.tsv, line 2: expected 2"):
        lo.read_tsv(bad_fields)
    with pytest.raises(ValueError, match="unknown ListOps token"):
        lo.tokenize("( [FIRST 1 2 ] )")
    with pytest.raises(ValueError, match="known: paper, corrected"):
        lo.ListOps(tokenization="brackets")


def small_task(tmp_path, **kw):
    opts = dict(n_train=64, n_val=16, n_test=16, min_length=10, max_length=60, data_dir=tmp_path)
    return lo.ListOps(**{**opts, **kw})


def test_task_batches_are_padded_per_batch_with_masks(tmp_path):
    task = small_task(tmp_path, tokenization="corrected")
    assert task.source == "generated" and "reimplementation of LRA" in task.data_source
    assert "corrected" in task.data_source and task.vocab_size == 16
    for batch in itertools.islice(task.train_batches(8, "cpu", seed=0), 10):
        lengths = batch.mask.sum(1)
        assert batch.x.dtype == torch.long and batch.x.shape[1] == lengths.max()
        assert (batch.x[batch.mask == 0] == task.pad_id).all()
        assert (batch.x[batch.mask == 1] != task.pad_id).all()
    for batch in task.eval_batches("test", 8, "cpu"):   # labels are the expressions' values
        for ids, n, y in zip(batch.x, batch.mask.sum(1), batch.y):
            assert lo.evaluate(lo.decode(ids[:n], "corrected")) == y
    # the split was cached in LRA's TSV layout and is read back identically
    cached = task.generated_folder() / "basic_train.tsv"
    assert lo.read_tsv(cached) == task.examples()["train"]


def test_paper_tokenization_truncates_to_max_len(tmp_path):
    task = small_task(tmp_path, max_len=20)
    assert task.vocab_size == 15 and task.max_len == 20
    widths = [b.x.shape[1] for b in task.eval_batches("val", 4, "cpu")]
    assert max(widths) == 20 and task.truncated["val"] > 0


def test_training_stream_resumes_to_the_same_batches_across_epochs(tmp_path):
    task = small_task(tmp_path)
    run = list(itertools.islice(task.train_batches(16, "cpu", seed=4), 10))   # 4 batches/epoch
    resumed = list(itertools.islice(task.train_batches(16, "cpu", seed=4, start_step=6), 4))
    for a, b in zip(run[6:], resumed):
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    other = next(task.train_batches(16, "cpu", seed=5))
    assert not torch.equal(other.x[:, :5], run[0].x[:, :5]) or not torch.equal(other.y, run[0].y)


def test_bucketing_groups_similar_lengths_and_covers_the_epoch():
    lengths = torch.tensor([random.Random(i).randint(1, 500) for i in range(200)])
    batches = bucketed_batches(lengths, 10, seed=0, epoch=0, pool=20)
    assert sorted(torch.cat(batches).tolist()) == list(range(200))
    spread = max(int(lengths[b].max() - lengths[b].min()) for b in batches)
    assert spread < 60                                     # random batches span ~450
    again = bucketed_batches(lengths, 10, seed=0, epoch=0, pool=20)
    assert all(torch.equal(a, b) for a, b in zip(batches, again))
    assert not all(torch.equal(a, b) for a, b in zip(batches, bucketed_batches(lengths, 10, 0, 1, 20)))
    with pytest.raises(ValueError, match="larger than the 5 training examples"):
        StepSampler(5, 8, seed=0)


def test_lra_released_files_are_used_when_present(tmp_path):
    folder = tmp_path / "lra_release" / "listops-1000"
    for name in lo.LRA_FILES.values():
        lo.write_tsv(folder / name, LRA_ROWS)
    task = lo.ListOps(data_dir=tmp_path)
    assert task.source == "lra" and "released" in task.data_source
    batch = next(task.eval_batches("val", 3, "cpu"))
    assert sorted(batch.y.tolist()) == sorted(t for _, t in LRA_ROWS)


def test_missing_lra_files_say_where_and_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        lo.ListOps(source="lra", data_dir=tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "lra_release" / "listops-1000") in msg
    assert "lra_release.gz" in msg and "source='generated'" in msg


# ---- bad files: each error names the file, the line and the fix -----------------------------
@pytest.mark.parametrize("content,expected", [
    (b"Source\tTarget\n( [MAX 1 ] )\t1\n( [MAX 1 [FIRST ] )\t1\n",
     r"bad\.tsv, line 3: unknown ListOps token '\[FIRST'.*known tokens"),
    (b"Source\tTarget\n( [MAX 1 ] )\t1\n( [MAX 1\x00 ] )\t1\n", r"bad\.tsv, line 3: NUL byte"),
    (b"Source\tTarget\n( [MAX 1 ] )\t1\n( [MAX \xff1 ] )\t1\n", r"bad\.tsv, line 3: not UTF-8"),
    (b"Source\tTarget\n", r"bad\.tsv: only the header, no examples"),
])
def test_bad_listops_file_names_file_line_and_fix(tmp_path, content, expected):
    path = tmp_path / "bad.tsv"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=expected) as err:
        lo.read_tsv(path)
    assert "source='generated'" in str(err.value)                      # the way out


def test_a_header_only_lra_split_fails_at_load_naming_the_file(tmp_path):
    folder = tmp_path / "lra_release" / "listops-1000"
    for name in lo.LRA_FILES.values():
        lo.write_tsv(folder / name, LRA_ROWS)
    (folder / "basic_test.tsv").write_text("Source\tTarget\n")
    with pytest.raises(ValueError, match=r"basic_test\.tsv: only the header"):
        lo.ListOps(data_dir=tmp_path).splits()          # was: "max() arg is an empty sequence"


def test_very_long_lines_are_read(tmp_path):
    source = "( ( [SM " + " ".join(["1"] * 70_000) + " ] ) )"      # 140,000+ characters
    assert len(source) > 131_072                                    # csv's default field limit
    path = tmp_path / "long.tsv"
    path.write_text(f"Source\tTarget\n{source}\t0\n")
    assert lo.read_tsv(path) == [(source, 0)]


def test_two_of_the_three_lra_files_is_an_error_naming_the_missing_one(tmp_path):
    folder = tmp_path / "lra_release" / "listops-1000"
    for name in ("basic_train.tsv", "basic_val.tsv"):
        lo.write_tsv(folder / name, LRA_ROWS)
    for source in ("auto", "lra"):                       # auto used to fall back to generated data
        with pytest.raises(FileNotFoundError, match=r"basic_test\.tsv.*missing") as err:
            lo.ListOps(source=source, data_dir=tmp_path)
        assert str(folder) in str(err.value) and "source='generated'" in str(err.value)
    ready, source, how = lo.ListOps.availability(data_dir=tmp_path)
    assert not ready and "incomplete" in source and "basic_test.tsv" in how
    assert lo.ListOps(source="generated", data_dir=tmp_path, n_train=4, n_val=2, n_test=2,
                      min_length=10, max_length=40).source == "generated"


def test_corrected_tokenization_advice_can_be_followed_from_the_cli():
    from fpt_testing import tiny_backbone

    from fptlib.model import FPT

    task = lo.ListOps(tokenization="corrected", n_train=4, n_val=2, n_test=2, min_length=70,
                      max_length=100, cache=False)
    with pytest.raises(ValueError) as err:
        FPT.for_task(task, tiny_backbone("gpt2"))       # sequences of over 70 tokens > 64 positions
    assert "extend_positions=True" in str(err.value) and "--extend-positions" in str(err.value)
