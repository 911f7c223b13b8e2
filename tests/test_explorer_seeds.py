"""The explorer over seeds (issue #24 item 8): measurements of every seed's model, and verdicts by
the course's one rule that change when the numbers do."""
import pytest

from fptlib import explorer as ex
from fptlib import explorer_seeds as es
from fptlib.explorer import PRETRAINED, RANDOM
from test_train_toy import one_thread  # noqa: F401


def seeds(n, kind, partner, none, top=None, rnd=None, chance=0.1, n_test=1000):
    """One SeedMeasure per value of ``partner`` (a fraction), with the accuracies given per seed."""
    out = []
    for i, p in enumerate(partner):
        acc = {"none": none[i]}
        if top is not None:
            acc.update({"top head": top[i], "random head": rnd[i]})
        out.append(es.SeedMeasure(n, kind, i, f"L0 H{i}", p, chance, acc, n_test, "made up for the test"))
    return out


def measures(*groups):
    return es.SeedMeasures("minilm", tuple(m for g in groups for m in g))


SOLVED = [0.99, 1.0, 0.995]
AT_CHANCE = [0.5, 0.49, 0.51]


def test_partner_share_verdict_follows_the_numbers():
    high = seeds(5, PRETRAINED, [0.9, 0.88, 0.92], SOLVED, [0.6, 0.62, 0.58], [0.99, 0.98, 0.99])
    low = seeds(5, RANDOM, [0.11, 0.12, 0.1], AT_CHANCE)
    text = "\n".join(es.verdicts(measures(high, low)))
    assert "language-pretrained heads put more attention on the partner bit" in text
    assert "random-init 50.0 ± 1.0% test accuracy (3 seeds): did not solve Bit XOR" in text
    assert "language-pretrained 99.5 ± 0.5% test accuracy (3 seeds): solved Bit XOR" in text
    # swapped shares: less; overlapping: no clear difference
    swapped = seeds(5, PRETRAINED, [0.11, 0.12, 0.1], SOLVED, [0.6, 0.62, 0.58], [0.99, 0.98, 0.99])
    assert "put less attention" in "\n".join(es.verdicts(measures(swapped, seeds(5, RANDOM, [0.9, 0.88, 0.92], AT_CHANCE))))
    noisy = seeds(5, PRETRAINED, [0.2, 0.6, 0.1], SOLVED, [0.6, 0.62, 0.58], [0.99, 0.98, 0.99])
    assert "no clearly different attention" in "\n".join(es.verdicts(measures(noisy, low)))


def test_ablation_verdict_follows_the_numbers_and_skips_an_unsolved_model():
    needed = seeds(8, PRETRAINED, [0.9] * 3, SOLVED, [0.6, 0.62, 0.58], [0.99, 0.98, 0.99])
    text = "\n".join(es.verdicts(measures(needed)))
    assert "costs more than a random head" in text and "the models need their top head" in text
    same = seeds(8, PRETRAINED, [0.9] * 3, SOLVED, [0.98, 0.99, 0.985], [0.99, 0.98, 0.99])
    text = "\n".join(es.verdicts(measures(same)))
    assert "costs no clearly different accuracy" in text and "does not show that the models need" in text
    unsolved = seeds(8, PRETRAINED, [0.9] * 3, AT_CHANCE, AT_CHANCE, AT_CHANCE)
    text = "\n".join(es.verdicts(measures(unsolved)))
    assert "did not solve Bit XOR" in text and "Ablation" not in text      # nothing to take away


def test_the_test_sets_sampling_error_bounds_the_certainty():
    """Three identical seeds are not an exact number: 1.5 points apart on 50 test examples is no
    clear difference, on 100,000 it is."""
    top, rnd = [0.95] * 3, [0.965] * 3
    small = seeds(8, PRETRAINED, [0.9] * 3, SOLVED, top, rnd, n_test=50)
    big = seeds(8, PRETRAINED, [0.9] * 3, SOLVED, top, rnd, n_test=100_000)
    assert "no clearly different" in "\n".join(es.verdicts(measures(small)))
    assert "costs more than" in "\n".join(es.verdicts(measures(big)))


def test_fewer_than_three_seeds_give_no_verdict():
    two = seeds(5, PRETRAINED, [0.9, 0.91], SOLVED[:2], [0.6, 0.6], [0.99, 0.99])
    rnd = seeds(5, RANDOM, [0.1, 0.1], AT_CHANCE[:2])
    text = "\n".join(es.verdicts(measures(two, rnd)))
    assert text.count("no verdict, fewer than 3 seeds") == 2 and "more attention" not in text


def test_table_rows_give_each_seeds_top_head_and_the_spread():
    rows = es.table_rows(measures(seeds(5, PRETRAINED, [0.9, 0.8, 0.7], SOLVED, [0.6] * 3, [0.99] * 3),
                                  seeds(5, RANDOM, [0.1] * 3, AT_CHANCE)))
    assert [r["model"] for r in rows] == [PRETRAINED, RANDOM]
    assert rows[0]["top heads"] == "L0 H0, L0 H1, L0 H2" and rows[0]["partner share (%)"] == "80.0 ± 10.0"
    assert rows[0]["chance (%)"] == "10.0" and rows[1]["top head ablated (%)"] == "-"
    mixed = seeds(5, RANDOM, [0.1] * 3, [0.56, 0.5, 0.5])
    mixed[0] = es.SeedMeasure(5, RANDOM, 0, "L0 H0", 0.1, 0.1, {"none": 0.56, "top head": 0.53, "random head": 0.55},
                              1000, "one seed above chance: the only one ablated")
    assert es.table_rows(measures(mixed))[0]["top head ablated (%)"] == "53.0 (1 of 3 seeds)"
    shares, accuracy = es.plot(measures(seeds(5, PRETRAINED, [0.9, 0.8, 0.7], SOLVED, [0.6] * 3, [0.99] * 3)))
    assert len(shares.axes[0].collections) >= 2 and accuracy.axes[0].get_xlabel() == "Bit XOR test accuracy (%)"


def test_measure_trains_or_loads_every_seed_and_lists_what_is_missing(tmp_path, one_thread, monkeypatch):  # noqa: F811
    m = es.measure((3,), "quick", "minilm", seeds=(0, 1), steps=2, train=True, directory=tmp_path, limit=20)
    assert sorted((x.kind, x.seed) for x in m.items) == [(PRETRAINED, 0), (PRETRAINED, 1), (RANDOM, 0), (RANDOM, 1)]
    for x in m.items:
        assert x.n_test == 20 and 0 <= x.partner <= 1 and x.chance == pytest.approx(1 / 6) and "minilm" in x.produced_by
        # two steps leave a model at chance on 20 examples: nothing to take away, so no ablation
        assert set(x.accuracy) == ({"none"} if not es._solved(es._summary([x.accuracy["none"]], 20)) else
                                   {"none", "top head", "random head", ex.ALL_BUT_TOP})
    monkeypatch.setattr(es, "_solved", lambda accuracy: True)      # as if each had solved it: ablated
    again = es.measure((3,), "quick", "minilm", seeds=(0, 1, 2), steps=2, directory=tmp_path, limit=20)
    assert all(set(x.accuracy) == {"none", "top head", "random head", ex.ALL_BUT_TOP} for x in again.items)
    assert [x.partner for x in again.items] == [x.partner for x in m.items]     # loaded, not retrained
    assert len(again.missing) == 2 and all("seed 2" in w and "produces it" in w for w in again.missing)
    assert "Not measured (2 runs)" in es.verdicts(again)[-1]
