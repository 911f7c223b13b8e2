"""Where a run happens: device choice, a hardware string, package versions, the git commit.

Every result record carries these so that a number can always be traced to what produced it.
"""
from __future__ import annotations

import functools
import os
import platform
import random
import subprocess
from importlib import metadata

import numpy as np
import torch

from fptlib.files import PACKAGE_DIR

# packages whose versions change results or speed; recorded in every result
RECORDED_PACKAGES = ("torch", "transformers", "numpy", "einops", "fptlib")


def pick_device(device: str | torch.device | None = "auto") -> torch.device:
    """Resolve "auto" to ``$FPT_DEVICE`` when set, else CUDA when present, else MPS, else CPU;
    check explicit choices exist. Every entry point (notebooks, command line, Trainer) goes through here."""
    source = ""
    if (device is None or str(device) == "auto") and os.environ.get("FPT_DEVICE", "").strip():
        device = os.environ["FPT_DEVICE"].strip()
        source = " (from $FPT_DEVICE: unset it or set it to one of these)"
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {device!r}{source}: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'") from err
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {device!r}{source} is not one fptlib trains on: use 'auto', 'cpu', 'cuda', "
                         f"'cuda:N' or 'mps'")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}{source} asked for but CUDA is not available here: use device='cpu' "
                         f"or 'auto'")
    return dev


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch (PyTorch's seed covers every device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def hardware(device: str | torch.device | None = "auto") -> str:
    """A short human-readable description, e.g. 'cpu: x86_64, 2 threads' or 'cuda: NVIDIA H100 80GB HBM3'."""
    dev = pick_device(device)
    if dev.type == "cuda":
        idx = dev.index if dev.index is not None else torch.cuda.current_device()
        return f"cuda: {torch.cuda.get_device_name(idx)} (x{torch.cuda.device_count()})"
    if dev.type == "mps":
        return f"mps: {platform.machine()}"
    cpu = platform.processor() or platform.machine()
    return f"cpu: {cpu}, {torch.get_num_threads()} threads, {os.cpu_count()} cores"


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in RECORDED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """The commit of the fptlib checkout (with '+dirty' when files differ), or 'unknown' outside git."""
    root = PACKAGE_DIR.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "fptlib"],
                               cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for an amp setting: "auto" is bf16 on CUDA cards that support it, fp16
    (with a gradient scaler) on older ones such as Colab's T4, and off on CPU and MPS, where
    bf16 autocast was measured slower than fp32 on our CPUs; "bf16" / "fp16" force it, "off" disables."""
    choices = ("auto", "bf16", "fp16", "off")
    if amp not in choices:
        raise ValueError(f"unknown amp setting {amp!r}: choose one of {choices}")
    if amp == "off":
        return None
    if amp == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if amp == "fp16" and device.type != "cuda":
        raise ValueError("amp='fp16' needs a CUDA device (it uses a gradient scaler): use amp='bf16' or 'off' on CPU")
    return torch.bfloat16 if amp == "bf16" else torch.float16


def tune_cpu_threads(device: torch.device) -> str | None:
    """On a CPU that other jobs keep busy, use one intra-op thread: with every core taken,
    PyTorch's OpenMP threads wait on each other, and two threads were measured 10-80x slower
    than one for small models on a shared 2-core machine. Respects an explicit OMP_NUM_THREADS.
    Returns a note saying what was done, or None. Called by the command line, not the library."""
    if device.type != "cpu" or os.environ.get("OMP_NUM_THREADS") or not hasattr(os, "getloadavg"):
        return None
    cores = os.cpu_count() or 1
    load = os.getloadavg()[0]
    if torch.get_num_threads() > 1 and load >= cores - 0.5:
        torch.set_num_threads(1)
        return (f"the CPU is busy (load {load:.1f} on {cores} cores): using 1 thread "
                f"(set OMP_NUM_THREADS to choose)")
    return None
