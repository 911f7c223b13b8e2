"""TAPE remote homology: LMDB and JSON readers on tiny files in TAPE's layout, the length cap."""
import json
import os
import pickle
import random
import subprocess
import sys
from pathlib import Path

import lmdb
import numpy as np
import pytest
import torch
from fpt_testing import MarkerPayload

from fptlib import tasks
from fptlib.tasks import homology, lmdb_file, plain_pickle
from fptlib.tasks.homology import SPLITS, RemoteHomology, encode

LONG = "M" + "ACDEFGHIKLMNPQRSTVWY" * 55           # 1101 residues: 1103 tokens > cap 1024


def record(i, seq, fold):
    """A record with every field TAPE's remote homology files carry."""
    return {"id": f"d{i}", "primary": seq, "protein_length": len(seq), "fold_label": fold,
            "superfamily_label": fold * 2, "family_label": fold * 3, "class_label": fold % 7,
            "secondary_structure": [0] * len(seq), "solvent_accessibility": [0] * len(seq),
            "evolutionary": [[0.0] * 3] * len(seq)}


def rows_for(split):
    rows = [record(0, "MKVLA", 3), record(1, "GSHMXB", 1194), record(2, "acde", 0)]
    if split == "train":
        rows.append(record(3, LONG, 42))
    return rows


def write_lmdb(root, corrupt=None, rows=rows_for):
    """TAPE's lmdb files for every split (``rows``: split -> records)."""
    folder = root / "remote_homology"
    folder.mkdir(parents=True, exist_ok=True)
    for split, tape in SPLITS.items():
        env = lmdb.open(str(folder / f"remote_homology_{tape}.lmdb"), map_size=1 << 24)
        records = rows(split)
        with env.begin(write=True) as txn:
            txn.put(b"num_examples", pickle.dumps(len(records)))
            for i, r in enumerate(records):
                value = pickle.dumps(r)
                if corrupt == (split, i):
                    value = b"\x80\x04garbage"
                txn.put(str(i).encode(), value)
        env.close()


def write_json(root):
    folder = root / "remote_homology"
    folder.mkdir(parents=True, exist_ok=True)
    for split, tape in SPLITS.items():
        (folder / f"remote_homology_{tape}.json").write_text(json.dumps(rows_for(split)))


def test_tokens_are_tapes_vocabulary():
    assert len(homology.VOCAB) == 30 and homology.VOCAB[0] == "<pad>" and homology.VOCAB[29] == "Z"
    assert encode("AZX") == [2, 5, 29, 27, 3]      # <cls> A Z X <sep>
    assert encode("J") == [2, 4, 3]                # unknown residue -> <unk>


@pytest.mark.parametrize("writer,fmt", [(write_lmdb, "lmdb"), (write_json, "json")])
def test_tape_files_are_read_with_the_length_cap(tmp_path, writer, fmt):
    writer(tmp_path)
    task = tasks.get("homology", data_dir=tmp_path)
    assert task.format == fmt and fmt in task.data_source
    assert (task.vocab_size, task.pad_id, task.output_dim, task.max_len) == (30, 0, 1195, 1024)
    assert task.hparams["lr"] == 1e-4
    train = task.splits()["train"]
    assert len(train) == 3 and task.dropped["train"] == 1        # the paper's code drops it
    assert train.y.tolist() == [3, 1194, 0]
    assert train.x[0, : train.lengths[0]].tolist() == encode("MKVLA")
    assert train.x[2, :6].tolist() == encode("ACDE")              # lower case accepted
    truncated = tasks.get("homology", data_dir=tmp_path, long_sequences="truncate")
    t = truncated.splits()["train"]
    assert len(t) == 4 and int(t.lengths[3]) == 1024 and t.y[3] == 42
    assert t.x[3, :3].tolist() == encode(LONG)[:3]
    assert truncated.dropped["train"] == 0
    assert task.eval_splits == ("val", "test_fold", "test_superfamily", "test_family")
    for split in task.eval_splits:
        batch = next(task.eval_batches(split, 8, "cpu"))
        assert batch.x.shape[1] == int(batch.mask.sum(1).max()) and len(batch) == 3


def test_training_batches_carry_masks_and_resume(tmp_path):
    write_json(tmp_path)
    task = tasks.get("homology", data_dir=tmp_path, long_sequences="truncate")
    a = [next(task.train_batches(2, "cpu", seed=0, start_step=s)) for s in range(4)]
    stream = task.train_batches(2, "cpu", seed=0)
    b = [next(stream) for _ in range(4)]
    assert all(torch.equal(p.x, q.x) and torch.equal(p.mask, q.mask) for p, q in zip(a, b))


def test_malformed_lmdb_record_names_file_and_record(tmp_path):
    write_lmdb(tmp_path, corrupt=("val", 1))
    task = tasks.get("homology", data_dir=tmp_path)
    with pytest.raises(ValueError, match=r"remote_homology_valid\.lmdb, record 1: cannot be unpickled"):
        task.splits()


def test_malformed_json_record_names_file_and_record(tmp_path):
    write_json(tmp_path)
    path = tmp_path / "remote_homology" / "remote_homology_test_family_holdout.json"
    rows = json.loads(path.read_text())
    del rows[2]["fold_label"]
    path.write_text(json.dumps(rows))
    with pytest.raises(ValueError, match=r"test_family_holdout\.json, record 2: record has no fold_label"):
        tasks.get("homology", data_dir=tmp_path).splits()
    rows[2]["fold_label"] = 5000
    path.write_text(json.dumps(rows))
    with pytest.raises(ValueError, match=r"record 2: fold_label 5000 is outside 0\.\.1194"):
        tasks.get("homology", data_dir=tmp_path).splits()


def test_missing_tape_data_offline_explains(tmp_path, monkeypatch):
    monkeypatch.setattr(homology, "reachable", lambda url, timeout=3.0: False)
    with pytest.raises(FileNotFoundError) as err:
        RemoteHomology(data_dir=tmp_path)
    msg = str(err.value)
    assert "TAPE remote homology" in msg and str(tmp_path) in msg
    assert homology.URLS["lmdb"] in msg
    with pytest.raises(ValueError, match="'drop'"):
        RemoteHomology(data_dir=tmp_path, long_sequences="clip")


# ---- hostile and damaged files ------------------------------------------------------------
def train_mdb(root):
    return root / "remote_homology" / "remote_homology_train.lmdb" / "data.mdb"


CHILD = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("lmdb_file", sys.argv[1])
lmdb_file = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lmdb_file)
try:
    with lmdb_file.open_readonly(sys.argv[2]) as env, env.begin() as txn:
        print(sum(len(value) for _, value in txn.cursor()))
except ValueError as err:
    print("ValueError:", err)
    sys.exit(3)
"""


def test_truncated_lmdb_gives_a_value_error_naming_the_file(tmp_path):
    """Defect: a truncated data.mdb killed Python with SIGBUS (exit 135), nothing printed.

    Read in a child process (which loads only lmdb_file.py, so it starts fast): a regression
    kills the child, not pytest."""
    write_lmdb(tmp_path)
    mdb = train_mdb(tmp_path)
    data = mdb.read_bytes()
    mdb.write_bytes(data[: len(data) - 2 * 4096])
    done = subprocess.run([sys.executable, "-c", CHILD, lmdb_file.__file__, str(mdb.parent)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, (done.returncode, done.stderr[-2000:])   # not -7 (SIGBUS)
    assert f"{mdb} is truncated" in done.stdout and "delete it" in done.stdout


@pytest.mark.parametrize("damage", ["empty", "random", "short"])
def test_broken_lmdb_gives_a_value_error_naming_the_file(tmp_path, damage):
    """Defect: empty or random data.mdb files gave raw lmdb.Error tracebacks."""
    write_lmdb(tmp_path)
    mdb = train_mdb(tmp_path)
    size = mdb.stat().st_size
    mdb.write_bytes({"empty": b"", "random": random.Random(0).randbytes(size),
                     "short": mdb.read_bytes()[:4096 + 100]}[damage])
    with pytest.raises(ValueError, match="not an LMDB data file") as err:
        tasks.get("homology", data_dir=tmp_path).splits()
    assert str(mdb) in str(err.value) and "delete it" in str(err.value)


def test_lmdb_check_in_process(tmp_path):
    write_lmdb(tmp_path)
    mdb = train_mdb(tmp_path)
    lmdb_file.check(mdb.parent)                                   # whole: accepted
    data = mdb.read_bytes()
    mdb.write_bytes(data[:-1])
    with pytest.raises(ValueError, match=f"{mdb}.* is truncated"):
        lmdb_file.check(mdb.parent)
    mdb.write_bytes(data[:100])
    with pytest.raises(ValueError, match="not an LMDB data file"):
        lmdb_file.check(mdb.parent)


def test_pickle_payload_in_a_record_is_refused_without_running(tmp_path):
    """Defect: TAPE records went through pickle.loads, so a record could run code."""
    marker = tmp_path / "marker"
    write_lmdb(tmp_path)
    env = lmdb.open(str(tmp_path / "remote_homology" / "remote_homology_valid.lmdb"), map_size=1 << 24)
    with env.begin(write=True) as txn:
        txn.put(b"1", pickle.dumps({"primary": "MKV", "fold_label": 1, "x": MarkerPayload(marker)}))
    env.close()
    with pytest.raises(ValueError, match=r"remote_homology_valid\.lmdb, record 1: cannot be "
                                         r"unpickled \(refused to load (io|builtins)\.open"):
        tasks.get("homology", data_dir=tmp_path).splits()
    assert not marker.exists()


def test_plain_pickle_accepts_the_data_tape_and_cifar_hold():
    record = {"id": "d1", "primary": "MKV", "protein_length": np.int64(3), "fold_label": 7,
              "secondary_structure": np.array([0, 1, 2], dtype=np.int64),
              "evolutionary": np.zeros((3, 30), np.float32), "flags": (True, None, b"x", 1.5)}
    for protocol in (2, 4, 5):
        back = plain_pickle.loads(pickle.dumps(record, protocol=protocol))
        assert back.keys() == record.keys() and back["protein_length"] == 3
        assert np.array_equal(back["evolutionary"], record["evolutionary"])
    with pytest.raises(pickle.UnpicklingError, match="object"):
        plain_pickle.loads(pickle.dumps(np.array([1, "a"], dtype=object)))
    with pytest.raises(pickle.UnpicklingError, match="collections.OrderedDict"):
        plain_pickle.loads(pickle.dumps(__import__("collections").OrderedDict(a=1)))
