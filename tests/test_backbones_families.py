"""The ViT, T5 and Longformer families: explicit groups, their position conventions, random
initialisation from the built-in configs offline, and an honest error for pretrained weights that
are neither cached nor downloadable. (Freezing after real steps, output shapes, attention maps and
the Hugging Face folder format are checked for every family in test_freeze, test_model and
test_backbones.)"""
from __future__ import annotations

import json
import re
import socket

import pytest
import torch

from fptlib import cli
from fptlib.backbones import BackboneUnavailable, KNOWN, backbone_names, load_backbone
from fptlib.model import FPT

from fpt_testing import tiny_backbone

NEW = ("vit", "t5", "longformer")
# tiny versions of the registry's configs (the real ones take ~10 s each to initialise)
TINY = {
    "vit": dict(num_hidden_layers=2, hidden_size=32, num_attention_heads=2, intermediate_size=64),
    "t5": dict(num_layers=2, d_model=32, d_kv=16, num_heads=2, d_ff=64),
    "longformer": dict(num_hidden_layers=2, hidden_size=32, num_attention_heads=2,
                       intermediate_size=64, attention_window=4, max_position_embeddings=66),
}


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.mark.parametrize("family", NEW)
def test_every_parameter_is_in_exactly_one_group(family):
    backbone = tiny_backbone(family)
    groups = backbone.parameter_groups()
    names = [n for n, _ in backbone.named_parameters()]
    assert sorted(groups) == sorted(names)
    rules = [(re.compile(p), g) for p, g in backbone.GROUP_RULES]
    for name in names:   # no name is claimed by two rules: the order of the rules does not matter
        assert len([g for p, g in rules if p.fullmatch(name)]) == 1, name
    present = set(groups.values())
    assert {"layernorm", "positions", "attention", "feedforward", "unused"} <= present


@pytest.mark.parametrize("name", NEW)
def test_random_init_from_the_built_in_config_offline_and_seeded(name, no_network):
    a = load_backbone(name, init="random", config_overrides=TINY[name], seed=1)
    b = load_backbone(name, init="random", config_overrides=TINY[name], seed=1)
    c = load_backbone(name, init="random", config_overrides=TINY[name], seed=2)
    assert (a.family, a.init, a.hidden_size, a.num_layers) == (KNOWN[name].family, "random", 32, 2)
    pa, pb, pc = (next(p for n, p in m.named_parameters() if m.parameter_groups()[n] == "attention")
                  for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)
    out = a(torch.randn(2, 9, 32))
    assert out.hidden.shape == (2, 9, 32) and torch.isfinite(out.hidden).all()


@pytest.mark.parametrize("name", NEW)
def test_pretrained_without_cache_or_network_is_an_honest_error(name, no_network):
    from fptlib.backbones import hub

    if hub.first_cached(KNOWN[name].hub_ids):
        pytest.skip(f"{name} is in the local Hugging Face cache")
    with pytest.raises(BackboneUnavailable) as err:
        load_backbone(name)
    text = str(err.value)
    assert KNOWN[name].hub_ids[0] in text and "does not answer" in text
    assert "init='random'" in text and "'vit', 't5' or 'longformer'" in text


def test_the_registry_configs_are_the_pretrained_models_sizes():
    """Full-size configs, built offline: widths, depths, ViT-B/16's 224/16 grid, T5's buckets and
    Longformer's 4096 positions and 512-token window."""
    from fptlib.backbones.registry import _config_for

    vit = _config_for("vit")[1]
    assert (vit.hidden_size, vit.num_hidden_layers, vit.image_size, vit.patch_size) == (768, 12, 224, 16)
    t5 = _config_for("t5")[1]
    assert (t5.d_model, t5.num_layers, t5.num_heads, t5.d_ff, t5.relative_attention_num_buckets) == \
        (768, 12, 12, 3072, 32)
    lf = _config_for("longformer")[1]
    assert (lf.hidden_size, lf.max_position_embeddings, lf.attention_window, lf.pad_token_id) == \
        (768, 4098, 512, 1)


def test_vit_uses_a_new_zero_positional_table_and_no_cls_token():
    backbone = tiny_backbone("vit").eval()
    groups = backbone.parameter_groups()
    assert groups["positions"] == "positions" and backbone.max_positions == 1024
    assert torch.count_nonzero(backbone.positions) == 0
    for name in ("model.embeddings.cls_token", "model.embeddings.position_embeddings",
                 "model.embeddings.patch_embeddings.projection.weight"):
        assert groups[name] == "unused"
    x = torch.randn(2, 5, 32)
    with torch.no_grad():
        before = backbone(x).hidden
        assert before.shape == (2, 5, 32)                        # no extra CLS position
        backbone.positions[3] = torch.randn(32)
        after = backbone(x).hidden                               # the table is really added
    assert not torch.allclose(before[:, 3], after[:, 3], atol=1e-4)
    model = FPT(tiny_backbone("vit"), token_dim=4, output_dim=2, max_len=1500, extend_positions=True)
    assert model.backbone.max_positions == 1500 and model.backbone.positions.requires_grad
    assert "new zero-initialised table of 1024 rows" in str(model.describe())
    assert "patch projection, CLS token" in str(model.describe())


def test_t5_has_relative_position_bias_and_no_table():
    model = FPT(tiny_backbone("t5"), token_dim=1, output_dim=2, max_len=500)
    assert model.backbone.max_positions is None
    assert model(torch.randn(1, 500)).shape == (1, 2)
    d = model.describe()
    positions = dict((g, t) for g, t, _ in d.rows)["positions"]
    assert positions == 32 * 2          # buckets x heads of the first block's bias
    assert "relative position bias: no positional table" in str(d)
    assert "group is empty" not in str(d)


def test_longformer_runs_long_sequences_in_windows_and_extends_past_its_table():
    backbone = tiny_backbone("longformer").eval()
    assert backbone.max_positions == 64                 # 66 rows minus the 2 padding rows
    with torch.no_grad():
        x = torch.randn(1, 64, 32)
        full = backbone(x).hidden
        # local attention: with 2 layers of window 4 the first token cannot see token 40
        changed = x.clone()
        changed[0, 40] = torch.randn(32)
        assert torch.allclose(backbone(changed).hidden[0, 0], full[0, 0], atol=1e-6)
        assert not torch.allclose(backbone(changed).hidden[0, 40], full[0, 40], atol=1e-6)
    table = backbone.model.embeddings.position_embeddings.weight.detach().clone()
    backbone.extend_positions(100)
    new = backbone.model.embeddings.position_embeddings.weight
    assert new.shape[0] == 102 and torch.equal(new[:66], table)
    assert torch.equal(new[66:], table[2:38])           # positions cycle, padding rows kept
    assert backbone(torch.randn(1, 100, 32)).hidden.shape == (1, 100, 32)
    with pytest.raises(ValueError, match="banded"):
        backbone(torch.randn(1, 8, 32), output_attentions=True)


def test_cli_lists_the_new_families(capsys, no_network):
    assert set(NEW) <= set(backbone_names())
    assert cli.main(["backbones", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["backbones"]}
    for name in NEW:
        assert rows[name]["family"] == name and rows[name]["random_init_offline"]


@pytest.mark.parametrize("family,head_class", [("vit", "ViTForImageClassification"),
                                               ("t5", "T5ForConditionalGeneration"),
                                               ("longformer", "LongformerForMaskedLM")])
def test_the_hub_checkpoints_layout_loads_into_the_bare_body(family, head_class, tmp_path, no_network):
    """google/vit-base-patch16-224, t5-base and allenai/longformer-base-4096 are stored as models
    with heads (a classifier, the decoder, the LM head): a tiny model of that class, saved in the
    same format, loads into our bare body with every body tensor equal."""
    import transformers

    body = tiny_backbone(family).model
    with torch.random.fork_rng():
        torch.manual_seed(0)
        full = getattr(transformers, head_class)(body.config)
    full.save_pretrained(tmp_path)
    loaded = load_backbone(str(tmp_path))
    assert loaded.family == family and loaded.init == "pretrained"
    stored = {n.split(".", 1)[1] if n.split(".")[0] in ("vit", "longformer") else n: p
              for n, p in full.named_parameters()}
    for name, param in loaded.model.named_parameters():
        key = "shared.weight" if name == "encoder.embed_tokens.weight" else name
        assert torch.equal(param, stored[key]), name
