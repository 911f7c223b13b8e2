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


def test_a_gap_inside_the_spread_is_no_clear_difference():
    a = Summary((0.80, 0.82, 0.84))        # std 0.02
    b = Summary((0.76, 0.79, 0.82))        # std 0.03
    assert difference(a, b) == "no clear difference"          # gap 0.03 <= 0.05
    c = Summary((0.60, 0.62, 0.64))
    assert difference(a, c) == "higher" and difference(c, a) == "lower"
    assert difference(Summary((0.9, 0.9)), c) == "too few seeds"


CLAIM = Claim("Language pretraining beats random initialisation (paper, Table 2)", "pretrained", "random",
              paper="paper: CIFAR-10 68.2 vs 61.7")


def test_verdict_flips_with_the_numbers():
    high, low = Summary((0.70, 0.72, 0.71)), Summary((0.60, 0.61, 0.62))
    holds = verdict(CLAIM, high, low, where="minilm, Fashion-MNIST 32x32, 2000 steps")
    reversed_ = verdict(CLAIM, low, high, where="minilm, Fashion-MNIST 32x32, 2000 steps")
    tie = verdict(CLAIM, high, Summary((0.69, 0.73, 0.70)))
    assert (holds.word, reversed_.word, tie.word) == ("holds", "reversed", "no clear difference")
    assert holds.sentence != reversed_.sentence != tie.sentence
    assert "holds here" in holds.sentence and "71.0 ± 1.0% (3 seeds)" in holds.sentence
    assert "Fashion-MNIST" in holds.sentence and "+10.0 points" in holds.sentence
    assert "reversed here" in reversed_.sentence and "-10.0 points" in reversed_.sentence


def test_verdict_on_an_equality_claim_and_on_missing_runs():
    claim = Claim("FPT matches a fully trained transformer (paper, Table 1)", "FPT", "full transformer", "~")
    same, better = Summary((0.70, 0.72, 0.71)), Summary((0.80, 0.81, 0.82))
    assert verdict(claim, same, Summary((0.71, 0.70, 0.72))).word == "holds"
    no = verdict(claim, same, better)
    assert no.word == "does not hold" and "FPT clearly lower" in no.sentence
    missing = verdict(claim, same, None)
    assert missing.word == "not run here" and "full transformer" in missing.sentence
    few = verdict(claim, Summary((0.7,)), better)
    assert few.word == "not run here" and "fewer than 3 seeds" in few.sentence
    assert all(v.word in stats.VERDICTS for v in (no, missing, few))
    with pytest.raises(ValueError, match="relation"):
        Claim("x", "a", "b", "<")


def test_two_settings_at_the_trivial_floor_give_no_verdict():
    """Bit Memory's copy baseline is 75%: 76.6 vs 76.0 is a 'difference' in noise around the floor,
    not evidence for the claim; one setting clearly above the floor gives the usual verdict."""
    stats_only, random = Summary((0.765, 0.766, 0.767)), Summary((0.758, 0.76, 0.762))
    floor = ("copy the visible bits", 0.752)
    at_floor = verdict(CLAIM, stats_only, random, floor=floor)
    assert at_floor.word == "at the trivial baseline" and "copy the visible bits 75.2%" in at_floor.sentence
    assert verdict(CLAIM, stats_only, random).word == "holds"                 # without the floor
    learned = verdict(CLAIM, Summary((0.89, 0.90, 0.88)), random, floor=floor)
    assert learned.word == "holds"
    below = verdict(CLAIM, Summary((0.50, 0.51, 0.49)), Summary((0.40, 0.41, 0.42)), floor=("chance", 0.5))
    assert below.word == "at the trivial baseline" and at_floor.word in stats.VERDICTS
