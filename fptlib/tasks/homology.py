"""Remote homology (TAPE): predict a protein's fold (1195 classes) from its amino-acid sequence.

Data: TAPE's ``remote_homology`` archive (LMDB or JSON), downloaded over https into ``<data>/``
when online: through a resumable ``.part`` file, checked (gzip CRC and tar structure), and
extracted into a temporary folder from which only the archive's files are moved in (files
already in ``remote_homology/`` are never deleted). TAPE publishes no checksum, so the first
download's SHA-256 is recorded in ``<data>/remote_homology_<format>.tar.gz.sha256`` (trust on
first use) and every later download of that archive must match it. Splits: ``train``,
``valid`` and three test holdouts (fold, superfamily, family); evaluation uses all four.

Records (LMDB: pickled dicts under keys "0", "1", ... plus "num_examples"; JSON: a list of the
same dicts) carry ``primary`` (the sequence), ``protein_length`` and ``fold_label`` (the
target) among other labels. Tokenization is TAPE's: 30 tokens, ``<pad>``=0 ... ``Z``=29, each
sequence wrapped in ``<cls>`` ... ``<sep>``.

Length cap (the paper: 1024 tokens): the authors' code skips sequences longer than that
(about 2.6% of examples) and says so; ``long_sequences="drop"`` does the same and
``"truncate"`` keeps their first 1024 tokens instead.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path

from fptlib import files
from fptlib.net import offline_note, reachable
from fptlib.tasks import lmdb_file, plain_pickle
from fptlib.tasks.base import paper_hparams
from fptlib.tasks.dataset import DatasetTask, Split
from fptlib.tasks.download import data_dir as resolve_data_dir
from fptlib.tasks.download import data_dir_explained, data_dir_tag, download, extract_tar, trust_on_first_use

URLS = {  # TAPE's bucket, over https (TAPE's README gives the same paths over http)
    "lmdb": "https://s3.amazonaws.com/songlabdata/proteindata/data_pytorch/remote_homology.tar.gz",
    "json": "https://s3.amazonaws.com/songlabdata/proteindata/data_raw_pytorch/remote_homology.tar.gz",
}
SPLITS = {  # our split name -> TAPE's
    "train": "train", "val": "valid", "test_fold": "test_fold_holdout",
    "test_superfamily": "test_superfamily_holdout", "test_family": "test_family_holdout",
}
VOCAB = ("<pad>", "<mask>", "<cls>", "<sep>", "<unk>", *"ABCDEFGHIKLMNOPQRSTUVWXYZ")
TOKEN_ID = {tok: i for i, tok in enumerate(VOCAB)}
N_FOLDS = 1195
FOLDER = "remote_homology"


def encode(sequence: str) -> list[int]:
    """TAPE's tokens of an amino-acid string: <cls>, one id per residue (<unk> if unknown), <sep>."""
    unk = TOKEN_ID["<unk>"]
    return [TOKEN_ID["<cls>"], *(TOKEN_ID.get(a, unk) for a in sequence.upper()), TOKEN_ID["<sep>"]]


def split_file(root: Path, split: str, fmt: str) -> Path:
    return root / FOLDER / f"remote_homology_{SPLITS[split]}.{fmt}"


def check_record(record, where: str) -> tuple[str, int]:
    """(sequence, fold_label) of one record, or a ValueError naming ``where``."""
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected a dict record, found {type(record).__name__}")
    missing = [k for k in ("primary", "fold_label") if k not in record]
    if missing:
        raise ValueError(f"{where}: record has no {', '.join(missing)} (fields: {sorted(record)})")
    seq, label = record["primary"], record["fold_label"]
    if not isinstance(seq, str) or not seq:
        raise ValueError(f"{where}: 'primary' must be a non-empty amino-acid string")
    try:
        whole = not isinstance(label, (bool, str)) and int(label) == label     # 3.7 is refused, not read as 3
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole:
        raise ValueError(f"{where}: fold_label {label!r} is not an integer")
    label = int(label)
    if not 0 <= label < N_FOLDS:
        raise ValueError(f"{where}: fold_label {label} is outside 0..{N_FOLDS - 1}")
    return seq, label


def read_lmdb(path: str | os.PathLike) -> list[tuple[str, int]]:
    """(sequence, fold_label) pairs from one TAPE LMDB split.

    The file is size-checked before LMDB maps it (lmdb_file) and records are unpickled as plain
    data only (plain_pickle): a record that would run code is refused, naming file and record.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"TAPE LMDB file {path} does not exist")
    with lmdb_file.open_readonly(path) as env, env.begin() as txn:
        raw = txn.get(b"num_examples")
        if raw is None:
            raise ValueError(f"{path}: no 'num_examples' key; not a TAPE LMDB file")
        try:
            n = int(plain_pickle.loads(raw))
        except (pickle.UnpicklingError, TypeError, ValueError, EOFError) as err:
            raise ValueError(f"{path}: 'num_examples' is not a pickled count ({err})") from err
        out = []
        for i in range(n):
            item = txn.get(str(i).encode())
            where = f"{path}, record {i}"
            if item is None:
                raise ValueError(f"{where}: missing (num_examples says {n})")
            try:
                record = plain_pickle.loads(item)
            except Exception as err:  # any unpickling failure means a corrupt or hostile record
                raise ValueError(f"{where}: cannot be unpickled ({err})") from err
            out.append(check_record(record, where))
    return out


def read_json(path: str | os.PathLike) -> list[tuple[str, int]]:
    """(sequence, fold_label) pairs from one TAPE JSON split (a list of records)."""
    path = Path(path)
    records = files.read_json(path, "replace it with TAPE's file (delete it: fptlib downloads it again)",
                              expect=list)
    return [check_record(r, f"{path}, record {i}") for i, r in enumerate(records)]


def find_format(root: Path, formats: tuple[str, ...] = tuple(URLS)) -> str | None:
    """The first of ``formats`` whose files exist for every split under ``root``, or None."""
    for fmt in formats:
        if all(split_file(root, s, fmt).exists() for s in SPLITS):
            return fmt
    return None


def fetch(root: Path, fmt: str = "lmdb", progress: bool = True) -> Path:
    """Download and extract TAPE's remote homology archive into ``root/remote_homology``.

    The archive's SHA-256 is checked against the one recorded at the first download (or
    recorded now). The archive is deleted after extraction only if this call downloaded it.
    """
    archive = root / f"remote_homology_{fmt}.tar.gz"
    ours = not archive.exists()
    download(URLS[fmt], archive, progress=progress)
    trust_on_first_use(archive, archive.with_name(archive.name + ".sha256"))
    folder = extract_tar(archive, root, FOLDER)
    if ours:
        archive.unlink()
    return folder


class RemoteHomology(DatasetTask):
    """Fold classification: token ids [B, L] (right-padded with 0), mask [B, L], 1195 classes."""

    name = "homology"
    input_kind = "discrete"
    vocab_size = len(VOCAB)
    pad_id = 0
    output_dim = N_FOLDS
    eval_splits = ("val", "test_fold", "test_superfamily", "test_family")

    def __init__(self, max_len: int = 1024, long_sequences: str = "drop", format: str = "auto",
                 n_train: int | None = None, n_eval: int | None = None, data_dir: str | None = None,
                 download: bool = True):
        super().__init__()
        if long_sequences not in ("drop", "truncate"):
            raise ValueError(f"long_sequences must be 'drop' (the paper's code) or 'truncate', "
                             f"got {long_sequences!r}")
        if format not in ("auto", "lmdb", "json"):
            raise ValueError(f"unknown TAPE format {format!r}; known: auto, lmdb, json")
        if not isinstance(max_len, int) or max_len < 3:
            raise ValueError(f"max_len must be an integer >= 3 (<cls>, a residue, <sep>), got {max_len!r}")
        self.root = resolve_data_dir(data_dir)
        self.max_len, self.long_sequences = max_len, long_sequences
        self.n_train, self.n_eval = n_train, n_eval
        self.options = {"max_len": max_len, "long_sequences": long_sequences, "format": format,
                        "n_train": n_train, "n_eval": n_eval}
        found = find_format(self.root, tuple(URLS) if format == "auto" else (format,))
        if found is None:
            fmt = "lmdb" if format == "auto" else format
            if not (download and reachable(URLS[fmt])):
                raise FileNotFoundError(self.missing_message(fmt))
            fetch(self.root, fmt)
            found = fmt
        self.format = found
        self.hparams = paper_hparams(lr=1e-4, batch_size=4)
        self.description = (f"Remote homology (TAPE): classify a protein's fold (1195 classes) "
                            f"from its amino-acid sequence, one residue per token (TAPE's 30-token "
                            f"vocabulary), up to {max_len} tokens.")
        cap = ("sequences over the cap are dropped, as in the paper's code" if long_sequences == "drop"
               else "sequences over the cap are truncated")
        subset = "" if n_train is None and n_eval is None else f"; subset: train {n_train}, eval {n_eval}"
        self.data_source = (f"TAPE remote homology ({self.format} files in {self.root / FOLDER}); "
                            f"length cap {max_len} tokens, {cap}{subset}")

    def missing_message(self, fmt: str) -> str:
        return (f"TAPE remote homology data is not on this machine and {URLS[fmt]} is unreachable"
                f"{offline_note(URLS[fmt])}. "
                f"Looked for {split_file(self.root, 'train', fmt)} (and the other splits) in data "
                f"folder {data_dir_explained(self.root)}. Online, fptlib downloads it there; or "
                f"download the archive yourself and unpack it into {self.root}. There is no offline "
                f"stand-in for protein data here.")

    @classmethod
    def data_key(cls, data_dir=None, **_) -> str:
        """The folder $FPT_DATA_DIR names, if it does (see registry.data_key): TAPE's files are read there."""
        return data_dir_tag(data_dir)

    @classmethod
    def availability(cls, data_dir=None, **_) -> tuple[bool, str, str]:
        root = resolve_data_dir(data_dir)
        fmt = find_format(root)
        if fmt:
            return True, f"TAPE {fmt} files in {root / FOLDER}", ""
        if reachable(URLS["lmdb"]):
            return True, f"download TAPE's archive into {root}", ""
        return False, "missing", (f"TAPE remote homology: download {URLS['lmdb']} and unpack it "
                                  f"into {root} (fptlib does this when online)")

    def load_splits(self) -> dict[str, Split]:
        reader = read_lmdb if self.format == "lmdb" else read_json
        splits, self.dropped = {}, {}
        for split in SPLITS:
            rows = reader(split_file(self.root, split, self.format))
            ids = [encode(seq) for seq, _ in rows]
            keep = [i for i, t in enumerate(ids) if len(t) <= self.max_len or self.long_sequences != "drop"]
            self.dropped[split] = len(ids) - len(keep)
            limit = self.n_train if split == "train" else self.n_eval
            keep = keep[:limit]
            if not keep:
                raise ValueError(f"{split_file(self.root, split, self.format)}: no sequence of at "
                                 f"most {self.max_len} tokens; raise max_len or use "
                                 f"long_sequences='truncate'")
            splits[split] = Split.from_sequences([ids[i][: self.max_len] for i in keep],
                                                 [rows[i][1] for i in keep])
        return splits
