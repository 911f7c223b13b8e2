"""Where data lives, whether the internet is there, and safe downloads.

* ``data_dir()``: the cache folder: an explicit argument, else ``$FPT_DATA_DIR``, else
  ``<repo>/data`` in a source checkout, else ``./data``.
* ``reachable(url)``: a TCP connect with a short timeout, so that an offline machine learns in
  seconds, not minutes of retries, that a download cannot work.
* ``download(url, dest)``: streams into ``dest.part`` and resumes it with an HTTP Range request
  after an interruption; only a complete file that passes its integrity check is renamed to
  ``dest``. A corrupt file is deleted and reported.
* ``extract_tar(archive, into)``: unpacks into a temporary folder next to the target and renames
  it into place, so a half-extracted folder is never mistaken for data.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import socket
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

from tqdm.auto import tqdm

_REPO = Path(__file__).resolve().parents[2]


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The data cache folder (not created here)."""
    if path is not None:
        return Path(path).expanduser()
    env = os.environ.get("FPT_DATA_DIR")
    if env:
        return Path(env).expanduser()
    if (_REPO / "pyproject.toml").exists() and (_REPO / "fptlib").is_dir():
        return _REPO / "data"
    return Path.cwd() / "data"


def data_dir_explained(path=None) -> str:
    """The data folder and why it is the one used (for error messages)."""
    folder = data_dir(path)
    if path is not None and Path(path).expanduser() != data_dir(None):
        why = "given as data_dir"
    elif os.environ.get("FPT_DATA_DIR"):
        why = "from $FPT_DATA_DIR"
    else:
        why = "the default; set $FPT_DATA_DIR or pass data_dir= to use another"
    return f"{folder} ({why})"


_REACHABLE: dict[tuple[str, int], bool] = {}


def reachable(url: str, timeout: float = 3.0) -> bool:
    """True when a TCP connection to the URL's host opens within ``timeout`` seconds (cached)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    key = (host, port)
    if key not in _REACHABLE:
        try:
            with socket.create_connection(key, timeout=timeout):
                _REACHABLE[key] = True
        except OSError:
            _REACHABLE[key] = False
    return _REACHABLE[key]


def check_archive(path: Path) -> None:
    """Read a ``.tar.gz`` to the end: gzip checks its CRC-32 and length, tar its headers.

    The gzip stream is read to its very end first (``tarfile`` alone stops at the end-of-archive
    marker and may never reach the CRC). Raises ValueError naming the file when it is truncated
    or corrupt.
    """
    try:
        with gzip.open(path, "rb") as stream:
            while stream.read(1 << 20):
                pass
        with tarfile.open(path, "r:gz") as tar:
            tar.getmembers()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise ValueError(f"{path} is not a complete .tar.gz archive ({err}); "
                         f"the download was corrupt or interrupted") from err


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, dest: str | os.PathLike, *, sha256_hex: str | None = None,
             check=check_archive, timeout: float = 30.0, progress: bool = True) -> Path:
    """Download ``url`` to ``dest`` through ``dest.part``, resuming a previous partial download.

    After the transfer the file must match ``sha256_hex`` (when a published one is known) and pass
    ``check`` (default: a full ``.tar.gz`` read). A file that fails is deleted, and a ValueError
    says so. Returns ``dest``.
    """
    dest = Path(dest)
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if have and response.status != 206:  # server ignored the Range: start again
                have = 0
            length = response.headers.get("Content-Length")
            total = have + int(length) if length else None
            with open(part, "ab" if have else "wb") as out, tqdm(
                    total=total, initial=have, unit="B", unit_scale=True, disable=not progress,
                    desc=f"downloading {dest.name}") as bar:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    bar.update(len(block))
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # the range starts at the end: the file is already complete
            pass
        else:
            raise RuntimeError(f"downloading {url} failed: HTTP {err.code} {err.reason}") from err
    except (urllib.error.URLError, OSError) as err:
        raise RuntimeError(f"downloading {url} failed ({err}); the partial file {part} is kept "
                           f"and the next attempt resumes it") from err
    try:
        if sha256_hex is not None and sha256(part) != sha256_hex:
            raise ValueError(f"{part} does not match the published SHA-256 {sha256_hex}")
        if check is not None:
            check(part)
    except ValueError as err:
        part.unlink(missing_ok=True)
        raise ValueError(f"download of {url} failed its integrity check and was deleted: {err}. "
                         f"Run the same command again to download it afresh.") from err
    os.replace(part, dest)
    return dest


def extract_tar(archive: str | os.PathLike, into: str | os.PathLike, top: str) -> Path:
    """Extract ``archive`` and move its folder ``top`` to ``into/top`` in one rename.

    The archive is unpacked in a temporary folder inside ``into`` (same file system), so the
    final ``os.replace`` is atomic and an interrupted extraction leaves no ``into/top`` behind.
    """
    into = Path(into)
    into.mkdir(parents=True, exist_ok=True)
    target = into / top
    with tempfile.TemporaryDirectory(dir=into, prefix=".extract-") as tmp:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(tmp, filter="data")
        source = Path(tmp) / top
        if not source.exists():
            raise ValueError(f"{archive} has no folder {top!r}; it is not the expected archive")
        if target.exists():
            shutil.rmtree(target)
        os.replace(source, target)
    return target
