"""Time-series classification from the UCR/UEA archive, tokenised as One Fits All (GPT4TS) does.

Beyond the paper: GPT4TS (Zhou et al., NeurIPS 2023) is FPT applied to time series. Its
classification model (``Classification/src/models/gpt4ts.py``) cuts a series of ``L`` steps and
``C`` channels into patches over time, ``patch_len`` 4 and stride 1, after replication-padding the
end by one stride; the ``C`` channels of a patch's 4 steps are one token of ``4 * C`` values
(``b m n p -> b n (p m)``). That is done here, in the task, as the image tasks cut patches: the
model's input layer is FPT's linear one (theirs: a convolution plus fixed positions).

Where the series come from, always said in ``task.data_source`` (aeon, https://www.aeon-toolkit.org):

* ``wheel``: the ``.ts`` files aeon's wheel ships (JapaneseVowels, BasicMotions, ArrowHead,
  GunPoint, ItalyPowerDemand, OSULeaf, ...), read with ``aeon.datasets.load_from_ts_file``, offline;
* ``archive``: any UCR/UEA problem through ``aeon.datasets.load_classification``: it reads
  ``<data_dir>/ucr-uea/<Name>/<Name>_TRAIN.ts`` / ``_TEST.ts`` where they are, else downloads them
  (the archive's Zenodo records) into that folder.

Variable lengths (JapaneseVowels: 7 to 29 steps) are zero-padded at the end to the longest series of
the problem, as the anchors' UEA loader pads (their padding mask is not passed to GPT4TS's model, so
every token is attended to; here too). Each channel is standardised with the mean and standard
deviation of the training split's real steps (no instance normalisation: GPT4TS's classification
model has none). The archive has train and test splits only: a validation split is carved from
train, stratified by class with scikit-learn (``val_fraction``, fixed seed, never the run's).
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from fptlib.net import reachable
from fptlib.tasks.base import paper_hparams, positive
from fptlib.tasks.dataset import DatasetTask, Split
from fptlib.tasks.download import data_dir as resolve_data_dir

SPLIT_SEED = 12345             # the validation carve never depends on the run's seed
ARCHIVE_FOLDER = "ucr-uea"     # under the data folder: <Name>/<Name>_TRAIN.ts, <Name>_TEST.ts
ARCHIVE_URL = "https://zenodo.org/"   # where aeon 1.x downloads the archive's problems from
SOURCES = ("auto", "wheel", "archive")
# One Fits All's classification settings (scripts/JapaneseVowels.sh and the model's defaults)
GPT4TS = {"patch_len": 4, "stride": 1, "lr": 5e-4, "epochs": 50, "optimizer": "radam", "layers": 6}
INSTALL = "pip install aeon (or pip install 'fptlib[timeseries]')"


def aeon_datasets():
    """``aeon.datasets``, or an ImportError that says how to install it."""
    try:
        import aeon.datasets
    except ImportError as err:
        raise ImportError(f"the time-series tasks read the UCR/UEA archive with aeon, which is not "
                          f"installed here ({err}); {INSTALL}") from err
    return aeon.datasets


def wheel_files(name: str) -> tuple[Path, Path] | None:
    """(train, test) ``.ts`` files of ``name`` inside aeon's wheel, or None where it does not ship them."""
    try:
        folder = Path(aeon_datasets().__file__).parent / "data" / name
    except ImportError:
        return None
    files = folder / f"{name}_TRAIN.ts", folder / f"{name}_TEST.ts"
    return files if all(f.exists() for f in files) else None


def archive_files(name: str, root: Path) -> bool:
    folder = root / ARCHIVE_FOLDER / name
    return all((folder / f"{name}_{s}.ts").exists() for s in ("TRAIN", "TEST"))


def plan(name: str, source: str, root: Path) -> str:
    """"wheel" | "archive"; a FileNotFoundError naming what is missing and how to get it."""
    if source not in SOURCES:
        raise ValueError(f"unknown time-series source {source!r}; known: {', '.join(SOURCES)}")
    if source in ("auto", "wheel") and wheel_files(name):
        return "wheel"
    if source in ("auto", "archive") and (archive_files(name, root) or reachable(ARCHIVE_URL)):
        aeon_datasets()
        return "archive"
    aeon_datasets()     # a missing aeon is the first thing to fix
    raise FileNotFoundError(
        f"the UCR/UEA problem {name!r} is not in aeon's wheel, not in {root / ARCHIVE_FOLDER / name}, and "
        f"the archive ({ARCHIVE_URL}) does not answer. Put {name}_TRAIN.ts and {name}_TEST.ts there, or "
        f"run once online (aeon.datasets.load_classification downloads them); offline, use a problem "
        f"aeon ships, e.g. JapaneseVowels or BasicMotions")


@functools.lru_cache(maxsize=8)
def read(name: str, how: str, root: Path) -> tuple[list[np.ndarray], np.ndarray, list[np.ndarray], np.ndarray]:
    """(train series, train labels, test series, test labels); a series is float [channels, steps]."""
    ds = aeon_datasets()
    if how == "wheel":
        parts = [ds.load_from_ts_file(str(f)) for f in wheel_files(name)]
    else:
        folder = root / ARCHIVE_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        parts = [ds.load_classification(name, split=s, extract_path=str(folder)) for s in ("train", "test")]
    (xtr, ytr), (xte, yte) = parts
    return [np.asarray(x, dtype=np.float32) for x in xtr], np.asarray(ytr), \
        [np.asarray(x, dtype=np.float32) for x in xte], np.asarray(yte)


def pad(series: list[np.ndarray], length: int) -> np.ndarray:
    """Series of [C, steps] zero-padded at the end to ``length`` steps: float [N, C, length]."""
    out = np.zeros((len(series), series[0].shape[0], length), dtype=np.float32)
    for i, s in enumerate(series):
        out[i, :, : s.shape[1]] = s
    return out


def patches(x: torch.Tensor, patch_len: int, stride: int) -> torch.Tensor:
    """GPT4TS's tokens: [N, C, L] replication-padded by ``stride`` at the end, cut into windows of
    ``patch_len`` every ``stride`` steps, each window's channels in one token: [N, tokens, patch_len*C]."""
    x = torch.nn.functional.pad(x, (0, stride), mode="replicate")
    windows = x.unfold(-1, patch_len, stride)                         # [N, C, tokens, patch_len]
    return windows.permute(0, 2, 3, 1).reshape(x.shape[0], windows.shape[2], -1)   # (p m)


class TimeSeriesTask(DatasetTask):
    """Classify a multichannel series from GPT4TS's patch tokens: x float [B, tokens, patch_len*C], y [B]."""

    input_kind = "continuous"
    output_tokens = 1

    def __init__(self, dataset: str = "JapaneseVowels", patch_len: int = GPT4TS["patch_len"],
                 stride: int = GPT4TS["stride"], val_fraction: float = 0.2, source: str = "auto",
                 data_dir: str | None = None):
        super().__init__()
        positive("patch_len", patch_len)
        positive("stride", stride)
        if not isinstance(dataset, str) or not dataset:
            raise ValueError(f"dataset is a UCR/UEA problem name such as 'JapaneseVowels', got {dataset!r}")
        if not (isinstance(val_fraction, float) and 0 < val_fraction < 0.5):
            raise ValueError(f"val_fraction must be a float in (0, 0.5), got {val_fraction!r}")
        self.dataset, self.patch_len, self.stride, self.val_fraction = dataset, patch_len, stride, val_fraction
        self.root = resolve_data_dir(data_dir)
        self.how = plan(dataset, source, self.root)
        self.name = dataset
        self.options = {"dataset": dataset, "patch_len": patch_len, "stride": stride,
                        "val_fraction": val_fraction, "source": source}
        xtr, ytr, xte, yte = read(dataset, self.how, self.root)
        self.classes = sorted(set(ytr.tolist()) | set(yte.tolist()))
        self.channels = xtr[0].shape[0]
        self.length = max(s.shape[1] for s in xtr + xte)
        if self.length < patch_len:
            raise ValueError(f"{dataset}'s longest series has {self.length} steps, fewer than patch_len={patch_len}")
        self.token_dim = patch_len * self.channels
        self.max_len = (self.length + stride - patch_len) // stride + 1
        self.output_dim = len(self.classes)
        self.hparams = paper_hparams(lr=GPT4TS["lr"], batch_size=16, patch_len=patch_len, stride=stride,
                                     token_dim=self.token_dim)
        shortest = min(s.shape[1] for s in xtr + xte)
        self.description = (
            f"UCR/UEA {dataset}: {len(xtr)} train / {len(xte)} test series of {self.channels} channel(s), "
            f"{shortest}-{self.length} steps, {self.output_dim} classes; zero-padded at the end to "
            f"{self.length} steps (as the anchors), channels standardised on train, in GPT4TS's patches of "
            f"{patch_len} steps every {stride} (one token = a patch's {self.channels} channels): "
            f"{self.max_len} tokens of dimension {self.token_dim}; validation: {val_fraction:.0%} of train, "
            f"stratified, seed {SPLIT_SEED}.")
        where = ("the .ts files in aeon's wheel (offline)" if self.how == "wheel"
                 else f"aeon.datasets.load_classification into {self.root / ARCHIVE_FOLDER}")
        self.data_source = f"UCR/UEA archive, {dataset} ({where}); validation carved from train"

    @classmethod
    def availability(cls, dataset: str = "JapaneseVowels", data_dir=None, **_) -> tuple[bool, str, str]:
        root = resolve_data_dir(data_dir)
        try:
            how = plan(dataset, "auto", root)
        except (FileNotFoundError, ImportError) as err:
            return False, "missing", str(err)
        return True, ("aeon's wheel (offline)" if how == "wheel" else "UCR/UEA archive via aeon"), ""

    def load_splits(self) -> dict[str, Split]:
        from sklearn.model_selection import train_test_split

        xtr, ytr, xte, yte = read(self.dataset, self.how, self.root)
        index = {c: i for i, c in enumerate(self.classes)}
        ytr = np.array([index[v] for v in ytr.tolist()])
        yte = np.array([index[v] for v in yte.tolist()])
        train_idx, val_idx = train_test_split(np.arange(len(xtr)), test_size=self.val_fraction,
                                              random_state=SPLIT_SEED, stratify=ytr)
        steps = np.concatenate([xtr[i] for i in train_idx], axis=1)                         # real steps only, no padding
        mean, std = steps.mean(axis=1, keepdims=True), steps.std(axis=1, keepdims=True) + 1e-8
        scaled = lambda series: pad([(s - mean) / std for s in series], self.length)  # noqa: E731

        raw = {"train": ([xtr[i] for i in train_idx], ytr[train_idx]),
               "val": ([xtr[i] for i in val_idx], ytr[val_idx]), "test": (xte, yte)}
        self._series = {name: (scaled(s), y) for name, (s, y) in raw.items()}
        return {name: Split(patches(torch.from_numpy(x), self.patch_len, self.stride).contiguous(),
                            torch.from_numpy(y).long()) for name, (x, y) in self._series.items()}

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(x float [N, channels, steps] standardised and padded, y [N]) of a split, before patching:
        for the classical classifiers."""
        self.splits()
        return self._series[self.check_split(split)]

    def model_kwargs(self) -> dict:
        return {**super().model_kwargs(), "head": "flatten"}     # GPT4TS's output head


def classical(task: TimeSeriesTask, rocket: bool = True, seed: int = 0) -> dict[str, dict]:
    """The trivial and classical baselines on a time-series task, fitted on its train split only:
    {name: {"val": accuracy, "test": accuracy, "what": words}} (fractions).

    - majority class: the training split's most common class (ties: the first in sorted order);
    - logistic regression: scikit-learn's, on the standardised, zero-padded series flattened
      (``baselines.fit_logistic_regression``: a tight tolerance on one thread);
    - MiniRocket (``rocket``): aeon's MiniRocketClassifier (random convolution features + ridge), the
      Rocket family of One Fits All's table; numba compiles it the first time (tens of seconds).
    """
    from fptlib.tasks.baselines import fit_logistic_regression

    (xtr, ytr), (xv, yv), (xte, yte) = (task.arrays(s) for s in ("train", "val", "test"))
    flat = lambda x: x.reshape(len(x), -1)  # noqa: E731
    majority = int(np.bincount(ytr).argmax())
    out = {"majority class": {"val": float((yv == majority).mean()), "test": float((yte == majority).mean()),
                              "what": f"always class {task.classes[majority]!r}, the training split's most common"}}
    logreg, _ = fit_logistic_regression(flat(xtr).astype(np.float64), ytr, seed)    # the same on any machine
    out["logistic regression"] = {"val": logreg.score(flat(xv), yv), "test": logreg.score(flat(xte), yte),
                                  "what": "scikit-learn LogisticRegression on the padded series, flattened"}
    if rocket:
        from aeon.classification.convolution_based import MiniRocketClassifier

        model = MiniRocketClassifier(random_state=seed).fit(xtr, ytr)
        out["MiniRocket"] = {"val": float((model.predict(xv) == yv).mean()),
                             "test": float((model.predict(xte) == yte).mean()),
                             "what": f"aeon MiniRocketClassifier (seed {seed}) on the padded series"}
    return out
