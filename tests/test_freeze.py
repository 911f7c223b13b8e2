"""Freeze presets: after real optimizer steps, frozen tensors are bit-identical and every trained
group has moved, on GPT-2, BERT, LLaMA, ViT, T5, Longformer and LSTM backbones and on the real MiniLM weights."""
from __future__ import annotations

import pytest
import torch

from fptlib.freeze import PRESETS, FreezeSpec
from fptlib.model import FPT

from fpt_testing import tiny_backbone

FAMILIES = ("gpt2", "bert", "llama", "vit", "t5", "longformer", "lstm")


def _train_steps(model: FPT, steps: int = 2, seq: int = 6) -> None:
    gen = torch.Generator().manual_seed(0)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-2)
    model.train()
    for _ in range(steps):
        x = torch.randn(4, seq * model.token_dim, generator=gen)
        y = torch.randint(0, 2, (4, model.output_tokens), generator=gen)
        logits = model(x).reshape(4, model.output_tokens, 2)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 2), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()


def _check_freeze(model: FPT) -> None:
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    _train_steps(model)
    groups = model.param_group_map()
    moved_groups = set()
    for name, param in model.named_parameters():
        group = groups[name]
        changed = not torch.equal(before[name], param.detach())
        if param.requires_grad:
            assert group != "unused"
            assert model.freeze.trains(group), f"{name} ({group}) trains under {model.freeze}"
            assert param.grad is not None, f"{name} is trainable but got no gradient"
            moved_groups.add(group) if changed else None
        else:
            assert not changed, f"frozen {name} ({group}) changed under {model.freeze}"
            assert param.grad is None
    present = set(groups.values())
    expected = {g for g in model.freeze.trained if g in present}
    # every trained group that this backbone has must have moved
    assert expected <= moved_groups, f"groups {expected - moved_groups} did not change"


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("preset", list(PRESETS))
def test_presets_freeze_exactly_their_groups(family, preset):
    model = FPT(tiny_backbone(family), token_dim=3, output_dim=2, output_tokens=2, freeze=preset)
    _check_freeze(model)


@pytest.mark.parametrize("preset", ["output_only", "fpt", "full"])
def test_presets_on_real_minilm(preset):
    from fptlib.backbones import load_backbone

    model = FPT(load_backbone("minilm"), token_dim=3, output_dim=2, output_tokens=2, freeze=preset)
    _check_freeze(model)


def test_ladder_adds_one_group_per_rung():
    ladder = ["output_only", "+layernorm", "+input", "+positions"]
    for before, after in zip(ladder, ladder[1:]):
        added = PRESETS[after] - PRESETS[before]
        assert len(added) == 1 and PRESETS[before] < PRESETS[after]
    assert PRESETS["fpt"] == PRESETS["+positions"] == {"input", "output", "layernorm", "positions"}
    assert PRESETS["+attention"] - PRESETS["fpt"] == {"attention"}
    assert PRESETS["+feedforward"] - PRESETS["fpt"] == {"feedforward"}


def test_arbitrary_combination_and_names():
    spec = FreezeSpec.parse("input+output+positions")   # the paper's "layer norm frozen" row
    assert spec.trained == {"input", "output", "positions"}
    assert FreezeSpec.parse("output+layernorm+input+positions").name == "fpt"
    assert FreezeSpec.parse({"output"}).name == "output_only"
    model = FPT(tiny_backbone("gpt2"), token_dim=3, output_dim=2, freeze=spec)
    _check_freeze(model)


@pytest.mark.parametrize("bad", ["fpt2", "input+layernorms", "", "+"])
def test_unknown_preset_lists_the_known_ones(bad):
    with pytest.raises(ValueError) as err:
        FreezeSpec.parse(bad)
    assert "output_only" in str(err.value) and "feedforward" in str(err.value)


def test_freeze_of_wrong_type():
    with pytest.raises(TypeError):
        FreezeSpec.parse(3)


def test_unmapped_parameter_is_an_error_not_a_guess():
    backbone = tiny_backbone("gpt2")
    backbone.model.extra = torch.nn.Linear(2, 2)    # a parameter no rule names
    with pytest.raises(ValueError, match="matches no group rule"):
        backbone.parameter_groups()
