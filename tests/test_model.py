"""The FPT model: tokens and patching, output reading, positions, counts, and every bad input."""
from __future__ import annotations

import json
import math

import pytest
import torch

from fptlib.backbones import load_backbone
from fptlib.model import FPT, INPUT_INIT_GAIN

from fpt_testing import tiny_backbone


# ---- patching and shapes ---------------------------------------------------------------------

@pytest.mark.parametrize("shape,token_dim,tokens", [
    ((2, 10), 1, 10),            # Bit XOR: 2 strings of 5 bits, one bit per token
    ((2, 6000), 50, 120),        # Bit Memory: 6 x 1000 bits in patches of 50
    ((2, 64, 48), 48, 64),       # CIFAR-10: 64 patches of 4x4x3
    ((2, 49, 16), 16, 49),       # MNIST 28x28 (the code's): 49 patches of 4x4
    ((2, 1024, 1), 1, 1024),     # CIFAR-10 LRA: one grey pixel per token
    ((2, 8, 32), 16, 16),        # a last dimension that is a multiple of the token size
])
def test_inputs_are_cut_into_tokens(shape, token_dim, tokens):
    model = FPT(tiny_backbone("lstm"), token_dim=token_dim, output_dim=3)
    out = model.tokens(torch.zeros(shape))
    assert out.shape == (2, tokens, token_dim)


def test_patching_keeps_token_order():
    model = FPT(tiny_backbone("lstm"), token_dim=2, output_dim=3)
    x = torch.arange(12.0).reshape(1, 12)
    assert model.tokens(x)[0, 1].tolist() == [2.0, 3.0]
    assert model.tokens(x)[0, 5].tolist() == [10.0, 11.0]


@pytest.mark.parametrize("family", ["gpt2", "bert", "llama", "vit", "t5", "longformer", "lstm"])
def test_output_shapes(family):
    single = FPT(tiny_backbone(family), token_dim=4, output_dim=10)
    assert single(torch.randn(3, 5, 4)).shape == (3, 10)
    multi = FPT(tiny_backbone(family), token_dim=1, output_dim=2, output_tokens=5)
    assert multi(torch.randn(3, 10)).shape == (3, 5, 2)
    discrete = FPT(tiny_backbone(family), vocab_size=15, output_dim=10, pad_id=0)
    assert discrete(torch.randint(1, 15, (3, 7))).shape == (3, 10)


def test_input_layer_is_orthogonal_with_the_authors_gain():
    model = FPT(tiny_backbone("gpt2"), token_dim=8, output_dim=2)
    w = model.input.weight.detach()              # [hidden=32, 8]: orthonormal columns * gain
    gram = w.T @ w
    assert torch.allclose(gram, INPUT_INIT_GAIN ** 2 * torch.eye(8), atol=1e-4)
    assert torch.count_nonzero(model.input.bias) == 0


def _grad_norm(model, x, y) -> float:
    model.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(model(x).reshape(-1, 2), y.reshape(-1))
    loss.backward()
    return torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad],
                                          float("inf")).item()


def test_a_leading_zero_token_does_not_blow_up_llama_gradients():
    # Bit XOR on a LLaMA body: with a zero input bias a leading 0 bit embeds to exactly zero and,
    # nothing being added (rotary positions) and attention causal, stays zero in every layer,
    # where RMSNorm's gradient is 1/sqrt(eps): 8 tiny layers gave a gradient norm of 1.8e8
    # (12.7 with a leading 1 bit); SmolLM2's 30 layers overflowed to NaN at the first step.
    from transformers import LlamaConfig

    from fptlib.backbones import backbone_from_config

    config = LlamaConfig(num_hidden_layers=8, hidden_size=32, num_attention_heads=2,
                         num_key_value_heads=1, intermediate_size=64, vocab_size=16)
    torch.manual_seed(0)
    model = FPT(backbone_from_config(config, dropout=0.0), token_dim=1, output_dim=2,
                output_tokens=5, dropout=0.0)
    bits = torch.tensor([[0., 1, 0, 1, 1, 0, 1, 0, 0, 1]])
    y = torch.tensor([[1, 1, 0, 1, 0]])
    leading_zero = _grad_norm(model, bits, y)
    bits[0, 0] = 1.0
    leading_one = _grad_norm(model, bits, y)
    assert math.isfinite(leading_zero) and leading_zero < 10 * leading_one
    # the bias: as long as the weight's column (the authors' gain), orthogonal to it
    w, b = model.input.weight.detach()[:, 0], model.input.bias.detach()
    assert b.norm().item() == pytest.approx(INPUT_INIT_GAIN, rel=1e-4)
    assert abs(torch.dot(w, b).item()) < 1e-4
    assert any("nonzero_bias_" in note for note in model.describe().notes)
    assert not any("nonzero_bias_" in note for note in FPT(tiny_backbone("gpt2"), token_dim=1,
                                                              output_dim=2).describe().notes)


@pytest.mark.parametrize("family", ["gpt2", "llama", "lstm"])
def test_padding_reads_the_last_real_token_exactly_for_causal_backbones(family):
    model = FPT(tiny_backbone(family), vocab_size=12, output_dim=4, output_tokens=2,
                pad_id=0).eval()
    seq = torch.randint(1, 12, (1, 5))
    padded = torch.cat([seq, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    mask = torch.tensor([[1] * 5 + [0] * 3])
    with torch.no_grad():
        alone = model(seq)
        in_batch = model(padded, attention_mask=mask)
    assert torch.allclose(alone, in_batch, atol=1e-5)


@pytest.mark.parametrize("family", ["bert", "vit", "t5", "longformer"])
def test_padding_is_masked_for_bidirectional_backbones(family):
    model = FPT(tiny_backbone(family), vocab_size=12, output_dim=4, pad_id=0).eval()
    seq = torch.randint(1, 12, (1, 5))
    padded = torch.cat([seq, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    mask = torch.tensor([[1] * 5 + [0] * 3])
    with torch.no_grad():
        assert torch.allclose(model(seq), model(padded, attention_mask=mask), atol=1e-5)
        # without the mask the padding would change the answer: the mask is really used
        assert not torch.allclose(model(seq), model(padded), atol=1e-5)


@pytest.mark.parametrize("family", ["gpt2", "bert", "llama", "vit", "t5"])
def test_attentions_come_back_per_layer(family):
    model = FPT(tiny_backbone(family), token_dim=1, output_dim=2, output_tokens=5).eval()
    implementation = model.backbone.config._attn_implementation
    logits, attentions = model(torch.randn(2, 10), output_attentions=True)
    assert logits.shape == (2, 5, 2)
    assert len(attentions) == 2
    for a in attentions:
        assert a.shape == (2, 2, 10, 10)
        assert torch.allclose(a.sum(-1), torch.ones(2, 2, 10), atol=1e-5)
    # the fast implementation used for training is restored after extraction
    assert model.backbone.config._attn_implementation == implementation


# ---- positional tables -----------------------------------------------------------------------

def test_too_long_for_the_positional_table_names_both_lengths():
    with pytest.raises(ValueError) as err:
        FPT(tiny_backbone("gpt2"), token_dim=1, output_dim=2, max_len=100)
    assert "100" in str(err.value) and "64" in str(err.value)
    assert "extend_positions" in str(err.value)
    model = FPT(tiny_backbone("gpt2"), token_dim=1, output_dim=2)
    with pytest.raises(ValueError, match="64 rows"):
        model(torch.randn(1, 100))


@pytest.mark.parametrize("family", ["gpt2", "bert"])
def test_extending_positions(family):
    backbone = tiny_backbone(family)
    old = next(p for n, p in backbone.named_parameters()
               if backbone.parameter_groups()[n] == "positions").detach().clone()
    model = FPT(backbone, token_dim=1, output_dim=2, max_len=150, extend_positions=True)
    assert model.backbone.max_positions == 150
    table = next(p for n, p in model.backbone.named_parameters()
                 if model.backbone.parameter_groups()[n] == "positions")
    assert table.shape[0] == 150 and table.requires_grad
    assert torch.equal(table[:64], old) and torch.equal(table[64:128], old)
    assert model(torch.randn(2, 150)).shape == (2, 2)
    description = model.describe()
    assert any("extended from 64 to 150" in n for n in description.notes)


def test_rotary_backbone_needs_no_extension_and_says_positions_are_empty():
    model = FPT(tiny_backbone("llama"), token_dim=1, output_dim=2, max_len=3000)
    assert model(torch.randn(1, 300)).shape == (1, 2)
    text = str(model.describe())
    assert "rotary" in text and "positions' group is empty" in text


# ---- parameter counts ------------------------------------------------------------------------

def test_gpt2_small_cifar_trainable_count_is_near_the_papers_106k():
    """The paper: 0.086% of GPT-2 base, about 106K of 124M, on CIFAR-10 (64 tokens).

    Its table gives CIFAR-10 tokens of dim 16 (4x4 patches), 10 classes, and counts only the
    64 positional rows used. We get input 16*768+768, output 768*10+10, 25 layer norms of
    2*768 and 64*768 positions = 108,298: within 3% of the rounded 106K (the paper does not say
    exactly how it counted biases), and 0.087% vs 0.086% of all parameters.
    """
    model = FPT(load_backbone("gpt2", init="random"), token_dim=16, output_dim=10, max_len=64)
    d = model.describe()
    assert d.paper_trainable == 16 * 768 + 768 + 768 * 10 + 10 + 25 * 2 * 768 + 64 * 768
    assert abs(d.paper_trainable - 106_000) / 106_000 < 0.03
    assert abs(d.total - 124.4e6) < 0.1e6
    assert round(100 * d.paper_trainable / d.total, 3) in (0.086, 0.087)
    # the full positional table (1024 rows) is trainable, but the paper counts rows used
    assert d.trainable - d.paper_trainable == (1024 - 64) * 768


def test_description_groups_add_up():
    model = FPT(tiny_backbone("bert"), token_dim=4, output_dim=3, max_len=10, freeze="output_only")
    d = model.describe()
    assert d.total == sum(p.numel() for p in model.parameters())
    assert d.trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert d.trainable == 32 * 3 + 3
    data = d.to_dict()
    assert data["groups"]["attention"]["trainable"] == 0
    assert data["groups"]["output"]["trainable"] == 99


def test_config_dict_identifies_the_configuration():
    a = FPT(tiny_backbone("gpt2"), token_dim=1, output_dim=2, freeze="fpt").config_dict()
    b = FPT(tiny_backbone("gpt2"), token_dim=1, output_dim=2, freeze="full").config_dict()
    assert a != b and a["freeze"] == "fpt" and b["freeze"] == "full"


# ---- bad input -------------------------------------------------------------------------------

def test_token_size_that_does_not_divide_names_both_numbers():
    model = FPT(tiny_backbone("lstm"), token_dim=16, output_dim=2)
    with pytest.raises(ValueError) as err:
        model(torch.randn(2, 50))
    assert "50" in str(err.value) and "16" in str(err.value)


def test_wrong_rank_and_dtype():
    cont = FPT(tiny_backbone("lstm"), token_dim=2, output_dim=2)
    with pytest.raises(ValueError, match="shape"):
        cont(torch.randn(2, 3, 4, 2))
    with pytest.raises(TypeError, match="floating-point"):
        cont(torch.ones(2, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="torch.Tensor"):
        cont([[1.0, 2.0]])
    disc = FPT(tiny_backbone("lstm"), vocab_size=10, output_dim=2)
    with pytest.raises(TypeError, match="integer token ids"):
        disc(torch.randn(2, 4))
    with pytest.raises(ValueError, match=r"\[batch, length\]"):
        disc(torch.ones(2, 4, 1, dtype=torch.long))


def test_output_group_count_that_does_not_fit():
    with pytest.raises(ValueError, match="output_tokens=12"):
        FPT(tiny_backbone("lstm"), token_dim=1, output_dim=2, output_tokens=12, max_len=10)
    model = FPT(tiny_backbone("lstm"), token_dim=1, output_dim=2, output_tokens=5)
    with pytest.raises(ValueError, match="last 5 tokens"):
        model(torch.randn(2, 3))


def test_constructor_arguments():
    with pytest.raises(ValueError, match="exactly one of token_dim"):
        FPT(tiny_backbone("lstm"), output_dim=2)
    with pytest.raises(ValueError, match="exactly one of token_dim"):
        FPT(tiny_backbone("lstm"), token_dim=2, vocab_size=3, output_dim=2)
    with pytest.raises(ValueError, match="output_dim"):
        FPT(tiny_backbone("lstm"), token_dim=2, output_dim=0)
    with pytest.raises(TypeError, match="Backbone"):
        FPT(torch.nn.Linear(2, 2), token_dim=2, output_dim=2)


def test_mask_of_the_wrong_shape():
    model = FPT(tiny_backbone("gpt2"), vocab_size=10, output_dim=2)
    with pytest.raises(ValueError, match="attention_mask"):
        model(torch.ones(2, 5, dtype=torch.long), attention_mask=torch.ones(2, 4))


# ---- MLP heads (the authors' in_layer_sizes / out_layer_sizes) -------------------------------

def test_mlp_heads_parameter_counts_are_exact_and_in_the_input_and_output_groups():
    model = FPT(tiny_backbone("gpt2"), token_dim=6, output_dim=3, in_layer_sizes=(16, 8),
                out_layer_sizes=(12,))
    counts = {g: t for g, t, _ in model.describe().rows}
    assert counts["input"] == (6 * 16 + 16) + (16 * 8 + 8) + (8 * 32 + 32)
    assert counts["output"] == (32 * 12 + 12) + (12 * 3 + 3)
    # the authors' layout: Linear, ReLU, Dropout between layers; input layers orthogonal, gain 1.41
    assert [type(m).__name__ for m in model.input] == ["Linear", "ReLU", "Dropout"] * 2 + ["Linear"]
    assert [type(m).__name__ for m in model.output] == ["Linear", "ReLU", "Dropout", "Linear"]
    w = model.input[3].weight.detach()                     # [8, 16]: orthonormal rows * gain
    assert torch.allclose(w @ w.T, INPUT_INIT_GAIN ** 2 * torch.eye(8), atol=1e-4)
    assert all(torch.count_nonzero(model.input[i].bias) == 0 for i in (0, 3, 6))
    assert model(torch.randn(2, 5 * 6)).shape == (2, 3)
    text = str(model.describe())
    assert "MLP head 6 -> 16 -> 8 -> 32" in text and "MLP head 32 -> 12 -> 3" in text
    plain = FPT(tiny_backbone("gpt2"), token_dim=6, output_dim=3)
    assert {g: t for g, t, _ in plain.describe().rows}["input"] == 6 * 32 + 32
    assert "in_layer_sizes" not in plain.config_dict()       # one-layer heads: identity unchanged
    assert model.config_dict()["in_layer_sizes"] == [16, 8]
    assert model.config_dict()["out_layer_sizes"] == [12]


def test_mlp_heads_train_and_freeze_with_their_groups():
    model = FPT(tiny_backbone("bert"), token_dim=3, output_dim=2, in_layer_sizes=(8,),
                out_layer_sizes=(8,), freeze="output_only")
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trained == {"output.0.weight", "output.0.bias", "output.3.weight", "output.3.bias"}


def test_a_checkpoint_of_another_head_is_refused(tmp_path):
    from fptlib.train.checkpoint import check_compatible

    one = FPT(tiny_backbone("gpt2"), token_dim=4, output_dim=2)
    mlp_head = FPT(tiny_backbone("gpt2"), token_dim=4, output_dim=2, in_layer_sizes=(8,))
    with pytest.raises(ValueError, match="in_layer_sizes"):
        check_compatible(tmp_path / "c.pt", {"model": one.config_dict()},
                         {"model": mlp_head.config_dict()}, {}, {})


@pytest.mark.parametrize("bad", [dict(in_layer_sizes=(0,)), dict(out_layer_sizes=("8",)),
                                 dict(vocab_size=10, token_dim=None, in_layer_sizes=(8,))])
def test_bad_mlp_head_sizes_are_named(bad):
    kwargs = {"token_dim": 4, **bad}
    with pytest.raises(ValueError, match="layer_sizes"):
        FPT(tiny_backbone("gpt2"), output_dim=2, **kwargs)


def test_describe_cli_counts_mlp_heads(capsys):
    from fptlib import cli

    assert cli.main(["describe", "--backbone", "lstm", "--token-dim", "16", "--in-layers", "32",
                     "--out-layers", "8", "--json"]) == 0
    groups = json.loads(capsys.readouterr().out)["groups"]
    assert groups["input"]["total"] == (16 * 32 + 32) + (32 * 768 + 768)
    assert groups["output"]["total"] == (768 * 8 + 8) + (8 * 10 + 10)
