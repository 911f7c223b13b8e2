"""Backbones: offline pretrained weights really load, initialisations, the default rule, the hub's
fast failure, and the command line."""
from __future__ import annotations

import json
import socket

import pytest
import torch

from fptlib import cli
from fptlib.backbones import (BackboneUnavailable, backbone_names, default_backbone,
                              load_backbone)
from fptlib.backbones import hub

from fpt_testing import tiny_backbone


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails (and is recorded)."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


def test_minilm_loads_its_pretrained_weights_offline(no_network):
    from safetensors.torch import load_file

    backbone = load_backbone("minilm")
    assert (backbone.family, backbone.init, backbone.num_layers, backbone.hidden_size) == \
        ("bert", "pretrained", 6, 384)
    stored = load_file(str(hub.minilm_dir() / "model.safetensors"))
    key = next(k for k in stored if k.endswith("encoder.layer.3.attention.self.query.weight"))
    assert torch.equal(backbone.model.encoder.layer[3].attention.self.query.weight, stored[key])
    assert sum(p.numel() for p in backbone.parameters()) == pytest.approx(22.7e6, rel=0.01)


def test_smollm2_loads_its_pretrained_weights_offline(no_network):
    from gguf import GGUFReader

    backbone = load_backbone("smollm2")
    assert (backbone.family, backbone.num_layers, backbone.hidden_size) == ("llama", 30, 576)
    reader = GGUFReader(str(hub.smollm2_gguf()))
    norm = next(t for t in reader.tensors if t.name == "blk.0.attn_norm.weight")
    expected = torch.from_numpy(norm.data.copy()).float().reshape(-1)
    assert torch.equal(backbone.model.layers[0].input_layernorm.weight.detach(), expected)
    assert backbone.max_positions is None
    out = backbone(torch.randn(1, 4, 576))
    assert out.hidden.shape == (1, 4, 576) and torch.isfinite(out.hidden).all()


def test_smollm2_reads_its_gguf_file_once_and_every_load_is_its_own_copy(no_network, monkeypatch):
    from fptlib.backbones import registry

    first = load_backbone("smollm2")                     # reads the file, unless a test before did
    monkeypatch.setattr(hub, "smollm2_gguf", lambda: pytest.fail("the GGUF file was read again"))
    second = load_backbone("smollm2", layers=2, dropout=0.0)
    assert second.num_layers == 2 and not second.model.training
    assert second.model.config.attention_dropout == 0.0 and first.model.config.attention_dropout == 0.1
    a, b = first.model.layers[1].mlp.up_proj.weight, second.model.layers[1].mlp.up_proj.weight
    assert torch.equal(a, b)
    with torch.no_grad():
        b.add_(1.0)                                      # training one copy leaves the other as read
    assert not torch.equal(a, b)
    assert torch.equal(registry._smollm2_weights()[1]["layers.1.mlp.up_proj.weight"], a)


def test_random_init_builds_gpt2_sizes_offline_and_is_seeded(no_network):
    a = load_backbone("gpt2", init="random", config_overrides=dict(n_layer=2), seed=1)
    b = load_backbone("gpt2", init="random", config_overrides=dict(n_layer=2), seed=1)
    c = load_backbone("gpt2", init="random", config_overrides=dict(n_layer=2), seed=2)
    wa, wb, wc = (m.model.h[0].attn.c_attn.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    assert a.hidden_size == 768 and a.max_positions == 1024 and a.init == "random"


def test_random_minilm_differs_from_pretrained(minilm):
    rand = load_backbone("minilm", init="random")
    assert not torch.equal(rand.model.encoder.layer[0].attention.self.query.weight,
                           minilm.model.encoder.layer[0].attention.self.query.weight)


def test_statistics_init_matches_each_tensors_mean_and_std(minilm):
    stats = load_backbone("minilm", init="statistics", seed=0)
    assert stats.init == "statistics"
    pretrained = dict(minilm.named_parameters())
    for name, param in stats.named_parameters():
        ref = pretrained[name]
        if ref.numel() < 1000:
            continue
        assert not torch.equal(param, ref)
        assert param.mean().item() == pytest.approx(ref.mean().item(), abs=0.05 * ref.std().item() + 1e-4)
        assert param.std().item() == pytest.approx(ref.std().item(), rel=0.05)


def test_truncating_layers():
    backbone = load_backbone("minilm", layers=2)
    assert backbone.num_layers == 2 and len(backbone.model.encoder.layer) == 2
    assert any("first 2 layers" in n for n in backbone.notes)
    whole = load_backbone("minilm", layers=6)                # all of its layers: no "truncated" note
    assert whole.num_layers == 6 and not any("truncated" in n for n in whole.notes)
    with pytest.raises(ValueError, match="1..6"):
        load_backbone("minilm", layers=7)


def test_lstm_baseline_shape_and_groups():
    backbone = load_backbone("lstm")
    assert backbone.hidden_size == 768 and backbone.num_layers == 3
    groups = backbone.parameter_groups()
    assert groups["layers.0.weight_hh_l0"] == "attention"
    assert groups["layers.0.weight_ih_l0"] == "feedforward"
    assert groups["norms.2.weight"] == "layernorm"
    with pytest.raises(ValueError, match="no attention weights"):
        backbone(torch.randn(1, 3, 768), output_attentions=True)


def test_unknown_backbone_lists_the_known_ones():
    with pytest.raises(ValueError) as err:
        load_backbone("gtp2")
    for name in ("gpt2", "minilm", "smollm2", "lstm"):
        assert name in str(err.value)
    with pytest.raises(ValueError, match="pretrained, random, statistics"):
        load_backbone("minilm", init="frozen")


def test_hub_model_fails_fast_offline_and_names_the_offline_backbones(monkeypatch, no_network):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    calls = []
    from transformers import GPT2Model

    monkeypatch.setattr(GPT2Model, "from_pretrained",
                        classmethod(lambda cls, *a, **k: calls.append(a) or None))
    with pytest.raises(BackboneUnavailable) as err:
        load_backbone("gpt2")
    assert "minilm" in str(err.value) and "smollm2" in str(err.value)
    assert len(no_network) == 1      # one quick reachability probe ...
    assert calls == []               # ... and no from_pretrained retrying against the network


def test_default_backbone_rule(monkeypatch):
    monkeypatch.delenv("FPT_BACKBONE", raising=False)
    assert default_backbone("smollm2") == ("smollm2", "chosen explicitly")
    monkeypatch.setenv("FPT_BACKBONE", "lstm")
    name, why = default_backbone()
    assert name == "lstm" and "FPT_BACKBONE" in why
    monkeypatch.delenv("FPT_BACKBONE")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    name, why = default_backbone()
    assert name == "minilm" and "no GPU" in why and "not GPT-2" in why
    # a GPU but no GPT-2 to be had: still MiniLM, and the reason says so
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    name, why = default_backbone()
    assert name == "minilm" and "cannot be loaded" in why
    # a GPU and a cached GPT-2: GPT-2
    monkeypatch.setattr(hub, "is_cached", lambda repo_id: repo_id == "openai-community/gpt2")
    name, why = default_backbone()
    assert name == "gpt2" and "paper's backbone" in why


def test_every_known_name_is_listed_by_the_cli(capsys):
    assert cli.main(["backbones", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    listed = {b["name"]: b for b in data["backbones"]}
    assert set(listed) == set(backbone_names())
    assert listed["minilm"]["pretrained_loadable"] is True
    assert listed["gpt2"]["random_init_offline"] is True


def test_describe_cli_json(capsys):
    code = cli.main(["describe", "--backbone", "gpt2", "--init", "random", "--token-dim", "16",
                     "--tokens", "64", "--classes", "10", "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["paper_trainable"] == 108_298
    assert data["groups"]["attention"]["trainable"] == 0
    assert data["setting"]["preset"] == "fpt"


def test_describe_cli_text_falls_back_to_the_config_when_weights_are_missing(capsys):
    assert cli.main(["describe", "--backbone", "gpt2", "--preset", "output_only"]) == 0
    out = capsys.readouterr().out
    assert "pretrained weights unavailable" in out and "identical shapes" in out
    assert "output_only" in out


def test_describe_cli_bad_preset_is_a_clean_error(capsys):
    assert cli.main(["describe", "--backbone", "lstm", "--preset", "nope"]) == 1
    assert "Known presets" in capsys.readouterr().err


def test_tiny_backbones_of_every_family_build():
    for family in ("gpt2", "bert", "llama", "vit", "t5", "longformer", "lstm"):
        assert tiny_backbone(family).hidden_size == 32


# ---- the online path, exercised on files in the real formats -----------------------------------

def _save_tiny(family, folder):
    backbone = tiny_backbone(family)
    backbone.model.save_pretrained(folder)
    return backbone


@pytest.mark.parametrize("family", ["gpt2", "bert", "llama", "vit", "t5", "longformer"])
def test_local_folder_in_hugging_face_format_loads(family, tmp_path, no_network):
    saved = _save_tiny(family, tmp_path / family)
    loaded = load_backbone(str(tmp_path / family))
    assert loaded.family == family and loaded.init == "pretrained"
    for (name, a), (_, b) in zip(saved.named_parameters(), loaded.named_parameters()):
        assert torch.equal(a, b), name


def test_gpt2_from_the_hugging_face_cache(tmp_path, monkeypatch, no_network):
    """A GPT-2 laid out as the hub cache lays it out is found and loaded without any network."""
    cache = tmp_path / "hub"
    snapshot = cache / "models--openai-community--gpt2" / "snapshots" / ("0" * 40)
    saved = _save_tiny("gpt2", snapshot)
    (cache / "models--openai-community--gpt2" / "refs").mkdir(parents=True)
    (cache / "models--openai-community--gpt2" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    assert hub.is_cached("openai-community/gpt2")
    loaded = load_backbone("gpt2")
    assert loaded.init == "pretrained" and "openai-community/gpt2" in loaded.source
    assert torch.equal(loaded.model.wpe.weight, saved.model.wpe.weight)
    stats = load_backbone("gpt2", init="statistics")
    assert not torch.equal(stats.model.wpe.weight, saved.model.wpe.weight)


def test_unsupported_family_is_named(tmp_path):
    from transformers import DistilBertConfig

    DistilBertConfig(n_layers=1, dim=8, hidden_dim=8, n_heads=1).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="gpt2, bert, llama, vit, t5, longformer"):
        load_backbone(str(tmp_path), init="random")


def test_a_cached_config_without_weights_is_not_counted_as_cached(tmp_path, monkeypatch, no_network):
    """Reading a hub model's config caches only config.json: that is not a cached model.

    Before the fix, the config alone counted as "in the local Hugging Face cache", and loading
    the weights with local_files_only=True failed with transformers' OSError.
    """
    from transformers import BertConfig

    from fptlib.backbones import pretrained_available

    repo = tmp_path / "hub" / "models--someorg--tinybert"
    snapshot = repo / "snapshots" / ("1" * 40)
    snapshot.mkdir(parents=True)
    BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
               intermediate_size=64).to_json_file(snapshot / "config.json")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("1" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    assert not hub.is_cached("someorg/tinybert")
    ok, how = pretrained_available("someorg/tinybert")
    assert not ok and "in the local Hugging Face cache" not in how
    with pytest.raises(BackboneUnavailable, match="someorg/tinybert"):
        load_backbone("someorg/tinybert")
    # the config alone still serves a randomly initialised model, offline
    assert load_backbone("someorg/tinybert", init="random").family == "bert"
