"""Matching-bit score and chance on hand-made attention stacks; extraction from each family."""
import pytest
import torch
from torch import nn

from fptlib.attention import (chance_value, check_attentions, extract_attentions, matching_bit_chance,
                              matching_bit_score, MatchingReport)


def uniform(layers, batch, heads, L, causal):
    """Softmax of zeros under the backbone's mask: uniform over the attendable positions."""
    a = torch.ones(layers, batch, heads, L, L)
    if causal:
        a = a.tril()
    return a / a.sum(-1, keepdim=True)


def on_matching_bits(layers, batch, heads, n, weight_a=0.5):
    """Every output row (token n+i) puts weight_a on token i and the rest on token n+i."""
    a = uniform(layers, batch, heads, 2 * n, causal=False).clone()
    for i in range(n):
        a[..., n + i, :] = 0
        a[..., n + i, i] = weight_a
        a[..., n + i, n + i] = 1 - weight_a
    return a


@pytest.mark.parametrize("n", [1, 5, 16])
def test_all_mass_on_matching_bits_scores_one(n):
    score = matching_bit_score(on_matching_bits(2, 3, 4, n), n)
    assert score.shape == (2, 4)
    torch.testing.assert_close(score, torch.ones(2, 4))


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("n", [1, 5, 8])
def test_uniform_attention_scores_chance(n, causal):
    attn = uniform(3, 2, 5, 2 * n, causal)
    score = matching_bit_score(attn, n)
    chance = matching_bit_chance(attn, n, causal)
    assert chance.shape == score.shape == (3, 5)
    torch.testing.assert_close(score, chance)


def test_chance_values_by_hand():
    assert chance_value(5, causal=False) == pytest.approx(0.2)
    # causal, n=2: output 0 (token 2) sees 3 positions, output 1 (token 3) sees 4
    assert chance_value(2, causal=True) == pytest.approx((2 / 3 + 2 / 4) / 2)


def test_score_separates_heads_and_ignores_other_mass():
    n = 4
    attn = uniform(1, 2, 2, 2 * n, causal=False)
    attn[0, :, 1] = on_matching_bits(1, 2, 1, n, weight_a=0.9)[0, :, 0]
    # mass on a wrong bit (token i+1 instead of i) must not count
    wrong = torch.zeros(2 * n, 2 * n)
    for i in range(n):
        wrong[n + i, (i + 1) % n] = 1.0
    attn[0, 0, 0] = wrong
    attn[0, 1, 0] = wrong
    score = matching_bit_score(attn, n)
    torch.testing.assert_close(score, torch.tensor([[0.0, 1.0]]))


def test_bad_inputs_have_clear_errors():
    attn = uniform(1, 1, 1, 10, False)
    with pytest.raises(ValueError, match="n_bits=4 has 8 tokens"):
        matching_bit_score(attn, 4)
    with pytest.raises(ValueError, match="positive int"):
        matching_bit_score(attn, 0)
    with pytest.raises(ValueError, match=r"\[layers, batch, heads, L, L\]"):
        check_attentions(attn[0])
    with pytest.raises(TypeError, match="torch.Tensor"):
        matching_bit_score(attn.numpy(), 5)
    with pytest.raises(TypeError, match="causal"):
        chance_value(5, causal="yes")


def test_report_best_head():
    score = torch.tensor([[0.1, 0.2], [0.9, 0.3]])
    rep = MatchingReport(n_bits=5, causal=False, score=score, chance=0.2)
    assert rep.best[:2] == (1, 0)
    assert rep.best_over_chance == pytest.approx(4.5)


# ------------------------------------------------------------------ extraction from HF families

def tiny_hf(family):
    import transformers as T
    if family == "bert":
        return T.BertModel(T.BertConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                                        intermediate_size=32, vocab_size=10))
    if family == "gpt2":
        return T.GPT2Model(T.GPT2Config(n_embd=16, n_layer=2, n_head=4, vocab_size=10))
    return T.LlamaModel(T.LlamaConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                                      num_key_value_heads=2, intermediate_size=32, vocab_size=10))


class HFBackboneLike(nn.Module):
    """The minimal Backbone surface extract_attentions relies on, around a tiny HF model whose
    default kernel (sdpa) returns no weights: extraction has to switch to eager by itself."""

    def __init__(self, family):
        super().__init__()
        self.hf = tiny_hf(family)
        self.family, self.num_heads, self.causal = family, 4, family != "bert"

    def forward(self, embeds, attention_mask=None, output_attentions=False):
        out = self.hf(inputs_embeds=embeds, attention_mask=attention_mask, output_attentions=output_attentions)
        return out


@pytest.mark.parametrize("family", ["bert", "gpt2", "llama"])
def test_extract_switches_sdpa_to_eager_and_back(family):
    bb = HFBackboneLike(family).train()
    assert bb.hf.config._attn_implementation == "sdpa"
    x = torch.randn(3, 6, 16)
    attn = extract_attentions(bb, x)
    assert attn.shape == (2, 3, 4, 6, 6) and attn.dtype == torch.float32
    torch.testing.assert_close(attn.sum(-1), torch.ones(2, 3, 4, 6))
    if bb.causal:
        assert attn.triu(1).abs().max() == 0
    assert bb.hf.config._attn_implementation == "sdpa"   # restored
    assert bb.training                                    # restored
    assert not torch.is_grad_enabled() or attn.grad_fn is None


def test_lstm_has_no_attention():
    class LSTMLike(nn.Module):
        family, num_heads, name = "lstm", 0, "lstm"

        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(4, 4)
    with pytest.raises(ValueError, match="LSTM"):
        extract_attentions(LSTMLike(), torch.zeros(1, 2, 4))
    from fptlib.backbones.registry import load_backbone
    with pytest.raises(ValueError, match="LSTM"):
        extract_attentions(load_backbone("lstm", hidden_size=8, layers=1), torch.zeros(1, 2, 8))
    with pytest.raises(TypeError, match="nn.Module"):
        extract_attentions(lambda x: x, torch.zeros(1))


# ------------------------------------------------------------------ the project's own backbones

TINY = {
    "gpt2": dict(n_layer=2, n_embd=32, n_head=4),
    "minilm": dict(num_hidden_layers=2, hidden_size=32, num_attention_heads=4, intermediate_size=64),
    "smollm2": dict(num_hidden_layers=2, hidden_size=32, num_attention_heads=4, num_key_value_heads=2,
                    intermediate_size=64),
}


@pytest.mark.parametrize("name", list(TINY))
def test_extract_from_project_backbones(name):
    from fptlib.backbones.registry import load_backbone
    try:
        bb = load_backbone(name, init="random", config_overrides=TINY[name])
    except Exception as err:  # the config ships with an optional offline package
        pytest.skip(f"{name} config not available offline: {err}")
    mask = torch.ones(2, 6, dtype=torch.long)
    attn = extract_attentions(bb, torch.randn(2, 6, bb.hidden_size), attention_mask=mask)
    assert attn.shape == (2, 2, 4, 6, 6)
    torch.testing.assert_close(attn.sum(-1), torch.ones(2, 2, 4, 6))
    assert (attn.triu(1).abs().max() == 0) == bb.causal
