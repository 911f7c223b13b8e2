"""Opening an LMDB file only after checking that it is whole.

LMDB maps ``data.mdb`` into memory and trusts the sizes written in it: a file cut short (an
interrupted copy or download) makes a read past its end kill the process with SIGBUS, with
nothing printed. So before ``lmdb.open`` we read the two meta pages at the start of the file
(LMDB 0.9's layout on 64-bit little-endian machines: magic 0xBEEFC0DE, format version 1, page
size, number of the last page used) and refuse, with a ValueError naming the file, a file
shorter than the pages it claims, or one that is not an LMDB data file at all. Errors that lmdb
itself raises later (a corrupt page inside a whole file) are also turned into ValueErrors naming
the file.
"""
from __future__ import annotations

import contextlib
import os
import struct
from pathlib import Path

MAGIC = 0xBEEFC0DE
VERSION = 1
PAGE_HEADER = 16                 # pgno (8), pad (2), flags (2), lower/upper (4)
META = struct.Struct("<II")      # magic, version at the start of each meta
PSIZE_AT, LAST_PAGE_AT = 24, 120  # offsets inside a meta: mm_psize, mm_last_pg


def data_file(path: str | os.PathLike) -> Path:
    """The ``data.mdb`` of an LMDB environment folder, or the file itself (``subdir=False``)."""
    path = Path(path)
    return path / "data.mdb" if path.is_dir() else path


def check(path: str | os.PathLike) -> None:
    """ValueError naming the file unless it holds whole LMDB meta pages and every page they claim."""
    file = data_file(path)
    if not file.exists():
        raise FileNotFoundError(f"LMDB data file {file} does not exist (an LMDB folder holds "
                                f"data.mdb); fetch the data again")
    if not file.is_file():      # a FIFO would block the read below forever
        raise ValueError(f"{file} is not a regular file (a FIFO, socket or device): replace it with "
                         f"the LMDB data file, or delete it and fetch the data again")
    size = file.stat().st_size
    fix = ("the copy or download was probably interrupted: delete it and fetch the data again")
    with open(file, "rb") as f:
        first = f.read(PAGE_HEADER + LAST_PAGE_AT + 8)
        if len(first) < PAGE_HEADER + LAST_PAGE_AT + 8:
            raise ValueError(f"{file} is not an LMDB data file: only {size} bytes; {fix}")
        page = struct.unpack_from("<I", first, PAGE_HEADER + PSIZE_AT)[0]
        if not (256 <= page <= 1 << 16 and page & (page - 1) == 0):
            raise ValueError(f"{file} is not an LMDB data file (its header gives page size "
                             f"{page}); {fix}")
        f.seek(page)
        metas = [first, f.read(len(first))]
    last = 0
    for i, meta in enumerate(metas):
        if len(meta) < len(first) or META.unpack_from(meta, PAGE_HEADER) != (MAGIC, VERSION):
            raise ValueError(f"{file} is not an LMDB data file (meta page {i} has no LMDB "
                             f"header at its start, or the file ends inside it); {fix}")
        last = max(last, struct.unpack_from("<Q", meta, PAGE_HEADER + LAST_PAGE_AT)[0])
    need = (last + 1) * page
    if size < need:
        raise ValueError(f"{file} is truncated: its header says {last + 1} pages of {page} bytes "
                         f"({need} bytes) but the file has {size}; {fix}")


@contextlib.contextmanager
def open_readonly(path: str | os.PathLike):
    """A read-only ``lmdb`` environment, after ``check``; lmdb errors become ValueErrors naming it."""
    import lmdb

    path = Path(path)
    check(path)
    try:
        env = lmdb.open(str(path), readonly=True, lock=False, readahead=False, meminit=False,
                        subdir=path.is_dir())
    except lmdb.Error as err:
        raise ValueError(f"{data_file(path)}: LMDB cannot open it ({err}); delete it and fetch "
                         f"the data again") from err
    try:
        yield env
    except lmdb.Error as err:
        raise ValueError(f"{data_file(path)}: LMDB read failed ({err}); the file is corrupt: "
                         f"delete it and fetch the data again") from err
    finally:
        env.close()
