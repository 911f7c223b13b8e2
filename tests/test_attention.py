"""Partner and self shares and their chance on hand-made attention stacks; extraction from each
family; the head-ablation hook."""
import pytest
import torch
from torch import nn

from fptlib.attention import (BitShares, ablate_heads, check_attentions, extract_attentions, output_projection,
                              partner_share, self_share, share_chance, top_head)


def uniform(layers, batch, heads, L, causal):
    """Softmax of zeros under the backbone's mask: uniform over the attendable positions."""
    a = torch.ones(layers, batch, heads, L, L)
    if causal:
        a = a.tril()
    return a / a.sum(-1, keepdim=True)


def on_bits(layers, batch, heads, n, partner=1.0):
    """Every output row (token n+i) puts ``partner`` on token i (its partner) and the rest on itself."""
    a = uniform(layers, batch, heads, 2 * n, causal=False).clone()
    for i in range(n):
        a[..., n + i, :] = 0
        a[..., n + i, i] = partner
        a[..., n + i, n + i] = 1 - partner
    return a


@pytest.mark.parametrize("n", [1, 5, 16])
def test_all_mass_on_partner_gives_partner_one_self_zero(n):
    attn = on_bits(2, 3, 4, n, partner=1.0)
    assert partner_share(attn, n).shape == (2, 4)
    torch.testing.assert_close(partner_share(attn, n), torch.ones(2, 4))
    torch.testing.assert_close(self_share(attn, n), torch.zeros(2, 4))
    # and the mirror image: a head that only looks at itself has no partner share at all
    attn = on_bits(2, 3, 4, n, partner=0.0)
    torch.testing.assert_close(partner_share(attn, n), torch.zeros(2, 4))
    torch.testing.assert_close(self_share(attn, n), torch.ones(2, 4))


def test_split_shares_by_hand():
    attn = on_bits(1, 1, 1, 3, partner=0.3)
    assert float(partner_share(attn, 3)) == pytest.approx(0.3)
    assert float(self_share(attn, 3)) == pytest.approx(0.7)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("n", [1, 5, 8])
def test_uniform_attention_gives_the_chance_values(n, causal):
    attn = uniform(3, 2, 5, 2 * n, causal)
    shares = BitShares.of(attn, n, causal)
    assert shares.partner.shape == shares.itself.shape == (3, 5)
    torch.testing.assert_close(shares.partner, torch.full((3, 5), shares.partner_chance))
    torch.testing.assert_close(shares.itself, torch.full((3, 5), shares.self_chance))


def test_chance_values_by_hand():
    assert share_chance(5, causal=False) == pytest.approx(0.1)
    # causal, n=2: output 0 (token 2) sees 3 tokens, output 1 (token 3) sees 4
    assert share_chance(2, causal=True) == pytest.approx((1 / 3 + 1 / 4) / 2)
    # a causal head's uniform attention is not the bidirectional chance
    attn = uniform(1, 1, 1, 4, causal=True)
    assert float(partner_share(attn, 2)) != pytest.approx(share_chance(2, causal=False))


def test_causal_partner_only_head():
    """A causal mask never hides the partner (token i < n+i): all mass there still scores 1."""
    n = 4
    attn = on_bits(1, 2, 1, n, partner=1.0)
    assert attn[0, 0, 0].triu(1)[n:].abs().max() == 0          # the output rows respect the mask
    torch.testing.assert_close(partner_share(attn, n), torch.ones(1, 1))


def test_shares_separate_heads_and_ignore_other_mass():
    n = 4
    attn = uniform(1, 2, 2, 2 * n, causal=False)
    attn[0, :, 1] = on_bits(1, 2, 1, n, partner=0.9)[0, :, 0]
    # mass on a wrong bit (token i+1 instead of i) must not count
    wrong = torch.zeros(2 * n, 2 * n)
    for i in range(n):
        wrong[n + i, (i + 1) % n] = 1.0
    attn[0, :, 0] = wrong
    torch.testing.assert_close(partner_share(attn, n), torch.tensor([[0.0, 0.9]]))
    torch.testing.assert_close(self_share(attn, n), torch.tensor([[0.0, 0.1]]))


def test_bad_inputs_have_clear_errors():
    attn = uniform(1, 1, 1, 10, False)
    with pytest.raises(ValueError, match="n_bits=4 has 8 tokens"):
        partner_share(attn, 4)
    with pytest.raises(ValueError, match="positive int"):
        self_share(attn, 0)
    with pytest.raises(ValueError, match=r"\[layers, batch, heads, L, L\]"):
        check_attentions(attn[0])
    with pytest.raises(TypeError, match="torch.Tensor"):
        partner_share(attn.numpy(), 5)
    with pytest.raises(TypeError, match="causal"):
        share_chance(5, causal="yes")


def test_top_head_is_the_argmax_of_the_partner_share():
    partner = torch.tensor([[0.1, 0.2, 0.05], [0.3, 0.9, 0.2]])
    assert top_head(partner) == (1, 1)
    attn = uniform(2, 1, 3, 6, causal=False)
    attn[1, :, 2] = on_bits(1, 1, 1, 3, partner=0.8)[0, :, 0]
    attn[0, :, 1] = on_bits(1, 1, 1, 3, partner=0.0)[0, :, 0]   # the best *self* head is not the top head
    assert BitShares.of(attn, 3, causal=False).top == (1, 2)


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


# ------------------------------------------------------------------ head ablation hook

def tiny_backbone(name):
    from fptlib.backbones.registry import load_backbone
    try:
        return load_backbone(name, init="random", config_overrides=TINY[name], dropout=0.0).eval()
    except Exception as err:  # the config ships with an optional offline package
        pytest.skip(f"{name} config not available offline: {err}")


def projection_input(bb, layer, x):
    """What the attention output projection of ``layer`` receives (the heads side by side)."""
    seen = []
    handle = output_projection(bb, layer).register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()))
    try:
        with torch.no_grad():
            out = bb(x).hidden
    finally:
        handle.remove()
    return seen[0], out


@pytest.mark.parametrize("mode", ["zero", "mean"])
@pytest.mark.parametrize("name", list(TINY))
def test_ablation_changes_exactly_one_head_and_is_removed(name, mode):
    bb = tiny_backbone(name)
    x = torch.randn(3, 6, bb.hidden_size, generator=torch.Generator().manual_seed(0))
    proj = output_projection(bb, 1)
    hooks_before = len(proj._forward_pre_hooks)
    base_in, base_out = projection_input(bb, 1, x)
    with ablate_heads(bb, 1, [2], mode=mode):
        abl_in, abl_out = projection_input(bb, 1, x)
    d = base_in.shape[-1] // bb.num_heads
    for h in range(bb.num_heads):
        part = slice(h * d, (h + 1) * d)
        if h == 2:
            assert not torch.equal(abl_in[..., part], base_in[..., part])
            if mode == "zero":
                assert abl_in[..., part].abs().max() == 0
            else:
                torch.testing.assert_close(abl_in[..., part], base_in[..., part].mean((0, 1)).expand_as(base_in[..., part]))
        else:
            assert torch.equal(abl_in[..., part], base_in[..., part])     # bit-identical
    assert not torch.equal(abl_out, base_out)
    # removed afterwards: no hook left, the output is bit-identical to before
    assert len(proj._forward_pre_hooks) == hooks_before
    _, after = projection_input(bb, 1, x)
    assert torch.equal(after, base_out)


def test_ablation_hook_removed_on_error_and_bad_arguments():
    bb = tiny_backbone("gpt2")
    proj = output_projection(bb, 0)
    with pytest.raises(RuntimeError, match="boom"):
        with ablate_heads(bb, 0, [1]):
            raise RuntimeError("boom")
    assert len(proj._forward_pre_hooks) == 0
    with pytest.raises(ValueError, match="0..3"):
        with ablate_heads(bb, 0, [4]):
            pass
    with pytest.raises(ValueError, match="layer=5 is out of range"):
        output_projection(bb, 5)
    with pytest.raises(ValueError, match="unknown ablation mode"):
        with ablate_heads(bb, 0, [1], mode="noise"):
            pass
