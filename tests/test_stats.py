"""Selection on validation, seeds aggregated, verdicts computed from the numbers."""
import math

import pytest

from fptlib import stats
from fptlib.stats import Claim, Summary, difference, selected, summarize, verdict


def record(seed, evals, key=None):
    """A results record with evaluations given as (step, val acc, test acc)."""
    return {"key": key or f"run-{seed}", "seed": seed,
            "evals": [{"step": s, "val": {"accuracy": v}, "test": {"accuracy": t}} for s, v, t in evals]}


def test_selection_uses_validation_never_the_best_test():
    rec = record(0, [(100, 0.60, 0.90), (200, 0.80, 0.70), (300, 0.75, 0.95)])
    sel = selected(rec)
    assert (sel.step, sel.selected, sel.reported) == (200, 0.80, 0.70)     # not 0.95, the best test
    assert "best-val" in sel.how and "200" in sel.how


def test_selection_ties_take_the_earliest_and_missing_splits_are_refused():
    assert selected(record(0, [(100, 0.8, 0.5), (200, 0.8, 0.9)])).step == 100
    with pytest.raises(ValueError, match="eval_every > 0"):
        selected({"key": "k", "evals": [{"step": 10, "test": {"accuracy": 0.5}}]})


def test_seeds_aggregate_to_mean_sample_std_and_t_interval():
    recs = [record(s, [(10, 0.5, x)]) for s, x in zip((2, 0, 1), (0.70, 0.60, 0.80))]
    summary = summarize(recs)
    assert summary.seeds == (0, 1, 2) and summary.values == (0.60, 0.80, 0.70)
    assert summary.mean == pytest.approx(0.70)
    assert summary.std == pytest.approx(0.10)                              # sample std, ddof=1
    assert summary.ci95 == pytest.approx(4.303 * 0.10 / math.sqrt(3))
    assert summary.text() == "70.0 ± 10.0% (3 seeds)"
    with pytest.raises(ValueError, match="same seed"):
        summarize([record(0, [(10, 0.5, 0.5)]), record(0, [(10, 0.5, 0.6)], key="other")])


def test_the_welch_interval_of_the_difference_decides():
    a = Summary((0.80, 0.82, 0.84))        # std 0.02
    b = Summary((0.76, 0.79, 0.82))        # std 0.03: gap 0.03 inside the interval's half-width
    assert difference(a, b) == "no clear difference"
    iv = stats.interval(a, b)
    se = math.sqrt(0.02 ** 2 / 3 + 0.03 ** 2 / 3)
    df = se ** 4 / ((0.02 ** 2 / 3) ** 2 / 2 + (0.03 ** 2 / 3) ** 2 / 2)           # Welch-Satterthwaite
    assert iv.df == pytest.approx(df) and iv.high - iv.gap == pytest.approx(stats.t975(df) * se)
    c = Summary((0.60, 0.62, 0.64))
    assert difference(a, c) == "higher" and difference(c, a) == "lower"
    assert difference(Summary((0.9, 0.9)), c) == "too few seeds"
    # the same gap, noisier seeds: the interval spans zero and the difference is no longer clear
    assert difference(Summary((0.70, 0.82, 0.94)), Summary((0.58, 0.62, 0.66))) == "no clear difference"


def test_a_spread_never_counts_below_the_test_sets_sampling_error():
    """Two collapsed-looking sides (std 0) a point apart: without the test-set size the gap is
    'clear'; on 500 test examples the binomial error (about 2 points) makes it no clear difference."""
    a, b = Summary((0.90, 0.90, 0.90)), Summary((0.89, 0.89, 0.89))
    assert difference(a, b) == "higher"
    a5, b5 = Summary(a.values, n_test=500), Summary(b.values, n_test=500)
    assert a5.sampling_error == pytest.approx(math.sqrt(0.8984 * 0.1016 / 500), rel=1e-3)
    assert a5.spread == a5.sampling_error and difference(a5, b5) == "no clear difference"
    assert Summary((1.0, 1.0, 1.0), n_test=500).sampling_error > 0          # 100% is not exact either
    big = Summary((0.50, 0.70, 0.90), n_test=500)
    assert big.spread == pytest.approx(big.std)                          # the seeds' spread when larger


def test_summarize_reads_the_test_set_size_from_the_records():
    recs = [{"key": f"k{s}", "seed": s, "evals": [{"step": 10, "val": {"accuracy": 0.5},
                                                   "test": {"accuracy": 0.6, "examples": n}}]}
            for s, n in ((0, 500), (1, 400), (2, 500))]
    assert summarize(recs).n_test == 400
    assert summarize([record(0, [(10, 0.5, 0.5)])]).n_test is None


CLAIM = Claim("Language pretraining beats random initialisation (paper, Table 2)", "pretrained", "random",
              paper="paper: CIFAR-10 68.2 vs 61.7")


def test_verdict_flips_with_the_numbers_and_never_judges_a_side():
    high, low = Summary((0.70, 0.72, 0.71)), Summary((0.60, 0.61, 0.62))
    holds = verdict(CLAIM, high, low, where="minilm, Fashion-MNIST 32x32, 2000 steps")
    reversed_ = verdict(CLAIM, low, high, where="minilm, Fashion-MNIST 32x32, 2000 steps")
    tie = verdict(CLAIM, high, Summary((0.69, 0.73, 0.70)))
    assert (holds.word, reversed_.word, tie.word) == ("pretrained higher", "pretrained lower", "no clear difference")
    assert (holds.kind, reversed_.kind, tie.kind) == ("higher", "lower", "no clear difference")
    assert (holds.agrees, reversed_.agrees, tie.agrees) == (True, False, False)
    assert holds.sentence != reversed_.sentence != tie.sentence
    assert "as the paper" in holds.sentence and "not as the paper" in reversed_.sentence
    assert "71.0 ± 1.0% (3 seeds)" in holds.sentence and "95% interval [+" in holds.sentence
    assert "Fashion-MNIST" in holds.sentence and "+10.0 points" in holds.sentence
    assert "-10.0 points" in reversed_.sentence
    for v in (holds, reversed_, tie):
        assert v.kind in stats.KINDS and not {"holds", "reversed", "does not hold"} & set(v.word.split(" ("))


def test_an_equality_claim_names_its_margin_and_needs_the_whole_interval_inside_it():
    claim = Claim("FPT matches a fully trained transformer (paper, Table 1)", "FPT", "full transformer", "~")
    same = Summary((0.700, 0.702, 0.701))
    tight = verdict(claim, same, Summary((0.705, 0.703, 0.704)))
    assert tight.word == "equal within 2 points" and tight.kind == "equal" and tight.agrees
    assert "margin 2 points" in tight.sentence
    # the same means, noisy seeds: the interval leaves the margin: not shown equal (noise never helps)
    noisy = verdict(claim, Summary((0.65, 0.70, 0.753)), Summary((0.66, 0.71, 0.742)))
    assert noisy.word == "not shown equal" and noisy.agrees is False
    # a wider margin, named by the claim, takes the noisy pair
    wide = Claim(claim.text, "FPT", "full transformer", "~", margin=0.5)
    assert verdict(wide, Summary((0.65, 0.70, 0.753)), Summary((0.66, 0.71, 0.742))).word == "equal within 50 points"
    better = Summary((0.80, 0.81, 0.82))
    assert verdict(claim, same, better).word == "FPT lower"                  # which way, when clear
    assert verdict(claim, better, same).word == "FPT higher"
    with pytest.raises(ValueError, match="margin"):
        Claim("x", "a", "b", "~", margin=2)


def test_verdict_on_missing_runs_and_too_few_seeds():
    claim = Claim("FPT matches a fully trained transformer (paper, Table 1)", "FPT", "full transformer", "~")
    same, better = Summary((0.70, 0.72, 0.71)), Summary((0.80, 0.81, 0.82))
    missing = verdict(claim, same, None)
    assert missing.word == "not run here" and "full transformer" in missing.sentence
    few = verdict(claim, Summary((0.7,)), better)
    assert few.word == "not run here" and "fewer than 3 seeds" in few.sentence
    assert {missing.kind, few.kind} == {"not run here"} and missing.agrees is None
    with pytest.raises(ValueError, match="relation"):
        Claim("x", "a", "b", "<")


def test_a_side_at_a_baseline_is_named_and_both_there_give_no_verdict():
    """Bit Memory's copy baseline is 75%: 76.6 vs 76.0 is noise around the floor; one side above
    it gives the usual verdict with the other side named; a fitted baseline counts too."""
    stats_only, random = Summary((0.765, 0.766, 0.767)), Summary((0.758, 0.76, 0.762))
    copy = [("chance", 0.5), ("copy the visible bits", 0.752)]
    at_floor = verdict(CLAIM, stats_only, random, baselines=copy)
    assert at_floor.word == "both at or below a baseline" and "copy the visible bits 75.2%" in at_floor.sentence
    assert at_floor.agrees is None
    assert verdict(CLAIM, stats_only, random).word == "pretrained higher"          # without the baselines
    one = verdict(CLAIM, Summary((0.89, 0.90, 0.88)), random, baselines=copy)
    assert one.word == "pretrained higher" and "random 76.0% is at or below the trivial baseline" in one.sentence
    assert "pretrained 89.0% is at" not in one.sentence
    # images: both sides above chance but below a pixel logistic regression: no verdict, named as fitted
    images = [("chance", 0.1), ("pixel logistic regression", 0.807, True)]
    below = verdict(CLAIM, Summary((0.74, 0.75, 0.73)), Summary((0.62, 0.63, 0.64)), baselines=images)
    assert below.word == "both at or below a baseline" and "fitted baseline (pixel logistic regression 80.7%)" in below.sentence
    above = verdict(CLAIM, Summary((0.86, 0.87, 0.85)), Summary((0.62, 0.63, 0.64)), baselines=images)
    assert above.word == "pretrained higher" and "random 63.0% is at or below the fitted" in above.sentence


def test_a_side_with_one_constant_output_is_flagged_as_collapsed():
    """Table 1's fully trained transformer at lr 1e-3: the same accuracy on every seed, the majority
    class (ListOps 16.5): a constant prediction, not a comparison. The same constant above every
    trivial baseline (an LSTM at 100.0 on every seed) is no collapse."""
    fpt = Summary((0.33, 0.35, 0.34), n_test=1000)
    flat = Summary((0.165, 0.165, 0.165), n_test=1000)
    listops = [("chance", 0.1), ("majority class", 0.165)]
    v = verdict(CLAIM, fpt, flat, baselines=listops)
    assert v.word == "a side collapsed to a constant output" and v.kind == "collapsed" and v.agrees is None
    assert "random gave the same accuracy on every seed" in v.sentence
    assert stats.collapsed(flat, listops) and not stats.collapsed(flat, [("chance", 0.1)])
    moving = Summary((0.165, 0.17, 0.16), n_test=1000)                     # seeds differ: no collapse
    assert verdict(CLAIM, fpt, moving, baselines=listops).word == "pretrained higher"
    # a fitted baseline never marks a collapse: a constant at or below it is only "at a baseline"
    assert not stats.collapsed(flat, [("pixel logistic regression", 0.8, True)])
    solved = Summary((1.0, 1.0, 1.0), n_test=1000)
    assert verdict(CLAIM, solved, flat.__class__((0.5, 0.51, 0.49), n_test=1000),
                   baselines=[("chance", 0.5)]).word == "pretrained higher"
