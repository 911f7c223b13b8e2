"""The explorer on a trained tiny model: every slider setting draws, the widget redraws on change."""
import itertools

import pytest
import torch

from fptlib import explorer as ex
from fptlib.attention import partner_share, top_head
from fptlib.explorer import KINDS, XorAttention, XorModels, default_head, explorer, figure_png, render, summary_rows
from fptlib.viz import plot_attention

N = 3          # bits per string: 6 tokens


def tiny_model(init_seed, n=N):
    from fptlib.backbones.registry import load_backbone
    from fptlib.model import FPT
    bb = load_backbone("gpt2", init="random", seed=init_seed, config_overrides=dict(n_layer=2, n_embd=32, n_head=4))
    return FPT(bb, output_dim=2, token_dim=1, output_tokens=n, max_len=2 * n)


@pytest.fixture(scope="module")
def trained():
    """A tiny 2-layer, 4-head GPT-2-shaped model trained briefly on Bit XOR, plus two others."""
    from fptlib.tasks.bits import BitXOR
    from fptlib.train.trainer import TrainConfig, Trainer
    out = {}
    for n in (N, N + 1):
        model, task = tiny_model(0, n), BitXOR(n=n, eval_size=64)
        Trainer(model, task, TrainConfig(steps=20, batch_size=8, eval_every=0, progress=False, device="cpu")).fit()
        out[n] = XorModels(n, {KINDS[0]: model, KINDS[1]: tiny_model(1, n), KINDS[2]: tiny_model(0, n)},
                           accuracy={KINDS[0]: 0.75, KINDS[1]: 0.5, KINDS[2]: None}, task=task)
    return out


@pytest.fixture(scope="module")
def data(trained):
    return {n: ex.xor_attention(models, examples=3) for n, models in trained.items()}


def test_attention_data_shapes(data):
    item = data[N]
    assert item.shape == (2, 3, 4)
    assert item.x.shape == (3, 2 * N)
    for attn in item.attentions.values():
        assert attn.shape == (2, 3, 4, 2 * N, 2 * N)
        torch.testing.assert_close(attn.sum(-1), torch.ones(2, 3, 4, 2 * N))
    assert item.causal is True
    assert item.tokens(0)[0].startswith("a0:") and item.tokens(0)[N].startswith("b0:")
    # the three models saw the same inputs, so untrained == pretrained start only if same init
    assert not torch.equal(item.attentions[KINDS[0]], item.attentions[KINDS[1]])


def test_plot_attention_over_whole_slider_range_of_trained_model(data):
    item = data[N]
    attn = item.attentions[KINDS[0]]
    layers, examples, heads = item.shape
    for layer, head, example, mean in itertools.product(range(layers), range(heads), range(examples),
                                                        (False, True)):
        fig = plot_attention(attn, layer, head, example, tokens=item.tokens(example), mean_heads=mean)
        shown = fig.axes[0].images[0].get_array()
        want = attn[layer, example].mean(0) if mean else attn[layer, example, head]
        torch.testing.assert_close(torch.as_tensor(shown), want)


def test_render_over_every_setting(data):
    """Every slider position of one length with all models; each model choice and length once."""
    layers, examples, heads = data[N].shape
    settings = [(N, layer, head, example, mean, KINDS) for layer, head, example, mean in
                itertools.product(range(layers), range(heads), range(examples), (False, True))]
    settings += [(n, 1, 3, 2, False, kinds) for n in data for kinds in (KINDS[:1], (KINDS[1], KINDS[2]))]
    for n, layer, head, example, mean, kinds in settings:
        fig = render(data, n, layer, head, example, mean, kinds)
        panels = [a for a in fig.axes if a.images]
        assert len(panels) == len(kinds)
        assert f"n={n}, example {example}" in fig.get_suptitle()
        assert panels[-1].get_title().startswith(kinds[-1])
        assert ("mean of heads" if mean else f"head {head}") in panels[0].get_title()


def test_render_bad_settings(data):
    with pytest.raises(ValueError, match="measured lengths"):
        render(data, 99)
    with pytest.raises(ValueError, match="at least one model"):
        render(data, N, kinds=())
    with pytest.raises(ValueError, match="head=4 is out of range"):
        render(data, N, head=4)


def test_default_head_is_the_argmax_of_the_partner_share(data):
    item = data[N]
    partner = partner_share(item.attentions[KINDS[0]], N)
    layer, head, why = default_head(item)
    assert (layer, head) == top_head(partner)
    assert float(partner[layer, head]) == float(partner.max())
    assert f"L{layer} H{head}" in why and "partner share" in why and KINDS[0] in why
    # another model's top head when asked for it
    assert default_head(item, KINDS[1])[:2] == top_head(partner_share(item.attentions[KINDS[1]], N))
    # render without layer/head opens on it
    fig = render(data, N, kinds=KINDS[:1])
    assert f"layer {layer}, head {head}: partner share {float(partner.max()):.2f}" in fig.axes[0].get_title()


@pytest.mark.widgets
def test_widget_opens_on_top_head_and_redraws_on_each_change(data, monkeypatch):
    calls = []
    real = ex.render

    def spy(d, **settings):
        calls.append(settings)
        return real(d, **settings)
    monkeypatch.setattr(ex, "render", spy)
    box = explorer(data)
    c = box.controls
    assert (c["layer"].max, c["head"].max, c["example"].max) == (1, 3, 2)
    layer, head, why = default_head(data[N])
    assert (c["layer"].value, c["head"].value) == (layer, head)
    assert (calls[-1]["layer"], calls[-1]["head"]) == (layer, head)
    assert why in box.note.value
    pictures = []
    for h in [x for x in range(4) if x != head] + [head]:
        c["head"].value = h
        assert calls[-1]["head"] == h
        pictures.append(figure_png(real(data, **calls[-1])))
    assert len(set(pictures)) == 4          # every head is a different picture
    c["mean_heads"].value = True
    assert calls[-1]["mean_heads"] is True and c["head"].disabled
    c["n_bits"].value = N + 1
    assert calls[-1]["n_bits"] == N + 1
    c["kinds"].value = (KINDS[1],)
    assert calls[-1]["kinds"] == (KINDS[1],)
    # the callback itself, called directly, with no model selected prints the reason
    box.draw(n_bits=N, layer=0, head=0, example=0, mean_heads=False, kinds=())


def test_summary_and_conclusion_come_from_the_data(data):
    rows = summary_rows(data)
    assert len(rows) == 2 * 3
    item = data[N]
    shares = item.shares()[KINDS[1]]
    row = next(r for r in rows if r["n"] == N and r["model"] == KINDS[1])
    layer, head = shares.top
    assert row["top head"] == f"L{layer} H{head}"
    assert row["partner share"] == pytest.approx(float(shares.partner.max()))
    assert row["its self share"] == pytest.approx(float(shares.itself[layer, head]))
    assert row["max self share"] == pytest.approx(float(shares.itself.max()))
    assert row["chance"] == pytest.approx(item.chance) == pytest.approx(ex.share_chance(N, True))
    text = ex.conclusion(data, "tiny-gpt2")
    assert "tiny-gpt2" in text and f"{row['partner share']:.2f}" in text
    assert "one seed" in text


def test_conclusion_calls_no_winner_on_a_gap_inside_the_margin(data, monkeypatch):
    """0.16 vs 0.15 is no winner (issue #24 item 7); the same rows 0.30 apart are."""
    rows = summary_rows(data)
    def fake(pre, rnd):
        out = []
        for r in rows:
            r = dict(r)
            if r["n"] == N and r["model"] in KINDS[:2]:
                r["partner share"] = pre if r["model"] == KINDS[0] else rnd
            out.append(r)
        return out
    monkeypatch.setattr(ex, "summary_rows", lambda d: fake(0.16, 0.15))
    assert "neither top head looks clearly more" in ex.conclusion(data, "tiny-gpt2")
    monkeypatch.setattr(ex, "summary_rows", lambda d: fake(0.45, 0.15))
    assert "language-pretrained model's top head looks more" in ex.conclusion(data, "tiny-gpt2")
    monkeypatch.setattr(ex, "summary_rows", lambda d: fake(0.15, 0.45))
    assert "random-init model's top head looks more" in ex.conclusion(data, "tiny-gpt2")


def test_head_ablation_rows(trained, data):
    models = trained[N]
    model = models.models[KINDS[0]]
    layer, head, _ = default_head(data[N])
    rows = ex.head_ablation(model, models.task, layer, head, random_heads=2, seed=0)
    assert [r["ablated"] for r in rows] == ["none", "top head", "random head", "random head", ex.ALL_BUT_TOP]
    assert rows[0]["test acc (%)"] == pytest.approx(100 * ex.bit_accuracy(model, models.task))
    random_heads = [r["heads"] for r in rows if r["ablated"] == "random head"]
    assert f"L{layer} H{head}" not in random_heads and len(set(random_heads)) == 2
    assert rows[-1]["heads"] == f"L{layer}: 3 heads"
    # the hooks are gone: the model answers as before
    assert ex.bit_accuracy(model, models.task) == pytest.approx(rows[0]["test acc (%)"] / 100)
    by_n = ex.ablation_by_length(trained, data, random_heads=1)
    series = ex.length_series(data, by_n)
    assert sorted(series["accuracy, top head ablated"]) == [N, N + 1]
    assert series["partner share (top head)"][N] == pytest.approx(float(data[N].shares()[KINDS[0]].partner.max()))


def test_head_ablation_scores_only_the_first_examples_when_limited(trained, data):
    models = trained[N]
    model = models.models[KINDS[0]]
    seen = []

    class Counting(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = model

        def forward(self, x):
            seen.append(x.shape[0])
            return self.inner(x)

        @property
        def backbone(self):
            return model.backbone

    layer, head, _ = default_head(data[N])
    rows = ex.head_ablation(Counting(), models.task, layer, head, random_heads=1, limit=10)
    assert len(rows) == 4 and seen == [10] * 4          # 4 rows, each scored on 10 of 64 examples
    seen.clear()
    ex.head_ablation(Counting(), models.task, layer, head, random_heads=1)
    assert seen == [64] * 4


def test_a_notebook_knows_when_it_runs_as_a_test(monkeypatch):
    from fptlib.notebook import CHECK_ENV, setup
    ctx = setup(quiet=True, matplotlib_inline=False)
    monkeypatch.setenv(CHECK_ENV, "1")
    assert ctx.checking
    monkeypatch.setenv(CHECK_ENV, "0")
    assert not ctx.checking
    monkeypatch.delenv(CHECK_ENV)
    assert not ctx.checking


def rows_with(top, random, base=100.0):
    rows = [{"ablated": "none", "heads": "-", "test acc (%)": base},
            {"ablated": "top head", "heads": "L0 H11", "test acc (%)": top}]
    rows += [{"ablated": "random head", "heads": f"L0 H{h}", "test acc (%)": a} for h, a in enumerate(random)]
    return rows + [{"ablated": ex.ALL_BUT_TOP, "heads": "L0: 11 heads", "test acc (%)": 97.0}]


def test_ablation_verdict_follows_the_numbers():
    needed = ex.ablation_verdict(rows_with(51.0, [99.0, 100.0]))
    assert "from 100% to 51%" in needed and "99-100%" in needed and "keeping only L0 H11 in its layer: 97%" in needed
    assert "needs L0 H11" in needed
    not_needed = ex.ablation_verdict(rows_with(98.0, [99.0, 100.0]))
    assert "from 100% to 98%" in not_needed and "does not show" in not_needed
    assert not_needed != needed
    assert "instead: 100%;" in ex.ablation_verdict(rows_with(51.0, [100.0, 100.0]))


def test_xor_configs_change_only_length_and_init():
    cfgs = ex.xor_configs(8, "quick", backbone="minilm")
    pre, rnd = cfgs[KINDS[0]], cfgs[KINDS[1]]
    assert (pre.init, rnd.init) == ("pretrained", "random")
    assert dict(pre.task_options)["n"] == 8 and pre.task_options == rnd.task_options
    assert pre.key != rnd.key and pre.steps == rnd.steps
    assert ex.xor_configs(8, "quick", backbone="minilm")[KINDS[0]].key == pre.key   # stable: reused
    with pytest.raises(ValueError, match="n_bits"):
        ex.xor_configs(0)


def test_length_5_runs_are_the_course_bit_xor_runs():
    """At the paper's length the explorer reuses the runs notebooks 03/08/10 store."""
    from fptlib.experiments import config
    cfgs = ex.xor_configs(5, "quick", backbone="minilm")
    assert cfgs[KINDS[0]].key == config("bit-xor", "quick", "minilm").key
    assert cfgs[KINDS[1]].key == config("bit-xor", "quick", "minilm", init="random").key


def test_long_strings_keep_fewer_examples():
    n = ex.LONG_FROM
    item = ex.xor_attention(XorModels(n, {KINDS[2]: tiny_model(0, n)}))
    assert item.shape[1] == ex.LONG_EXAMPLES
    assert item.attentions[KINDS[2]].shape[-1] == 2 * n
    fig = render({n: item}, n, kinds=(KINDS[2],))
    assert 10 <= len(fig.axes[0].get_xticks()) <= 40        # 128 tokens: ticks thinned


def test_xor_models_reports_a_nan_run_instead_of_showing_it(monkeypatch):
    from fptlib import experiments
    from fptlib.train.trainer import NonFiniteLossError

    def nan_run(cfg, **kw):
        raise NonFiniteLossError("the training loss became NaN or infinite at step 2 (lr=0.001). Likely causes: ...")
    monkeypatch.setattr(experiments, "run", nan_run)
    out = ex.xor_models(5, "quick", "minilm", kinds=(KINDS[0],), progress=False)
    assert out.models == {} and out.failed[KINDS[0]].endswith("at step 2 (lr=0.001)")
    assert out.task.n == 5
    with pytest.raises(ValueError, match="unknown model kinds"):
        ex.xor_models(5, "quick", "minilm", kinds=("trained",))


def test_xor_models_load_only_never_trains_and_says_how_to_get_a_missing_run(tmp_path, monkeypatch):
    from fptlib import experiments

    def no_training(cfg, **kw):
        raise AssertionError("train=False must not train")
    out = ex.xor_models(8, "evidence", "minilm", kinds=(KINDS[0],), train=False, directory=tmp_path)
    assert out.models == {} and "reproduce attention --profile evidence" in out.failed[KINDS[0]]
    # a stored run with its weights loads (trained here on a tiny budget, then read back without training)
    done = ex.xor_models(5, "quick", "minilm", kinds=(KINDS[0],), steps=2, directory=tmp_path, progress=False)
    monkeypatch.setattr(experiments, "run", no_training)
    again = ex.xor_models(5, "quick", "minilm", kinds=(KINDS[0],), steps=2, directory=tmp_path, train=False)
    assert again.accuracy == done.accuracy and not again.failed
    x = ex.xor_inputs(5, examples=2)
    assert torch.equal(again.models[KINDS[0]](x).argmax(-1), done.models[KINDS[0]](x).argmax(-1))
