"""Where data lives, whether the internet is there, and safe downloads.

* ``data_dir()``: the cache folder: an explicit argument, else ``$FPT_DATA_DIR``, else
  ``<repo>/data`` in a source checkout, else ``./data``.
* ``download(url, dest)``: streams into ``dest.part`` (under fptlib.net's time limits) and
  resumes it with an HTTP Range request after an interruption; only a complete file that passes
  its integrity checks is renamed to ``dest``. A corrupt download is deleted and reported; a bad
  file already at ``dest`` (not written by this function) is reported with the fix.
* ``extract_tar(archive, into, top)``: unpacks into a temporary folder next to the target, then
  moves in only what the archive brought; it never deletes or overwrites a file it did not make.
* ``trust_on_first_use(file, record)``: no SHA-256 is published for some archives (TAPE's), so
  the first download's SHA-256 is recorded next to the data and later downloads must match it.

Whether a host can be reached, and every time limit, is fptlib.net's business.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import tarfile
import tempfile
import time
import urllib.error
import zlib
from pathlib import Path

from tqdm.auto import tqdm

from fptlib import net
from fptlib.files import atomic_write_text, repo_root


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The data cache folder (not created here)."""
    if path is not None:
        return Path(path).expanduser()
    env = os.environ.get("FPT_DATA_DIR")
    if env:
        folder = Path(env).expanduser()
        if os.path.lexists(folder) and not folder.is_dir():
            raise ValueError(f"$FPT_DATA_DIR={env} is not a folder (a file, or a link that leads nowhere "
                             f"or in a loop): set it to a folder (created if missing), or unset it for "
                             f"the default {_default_data_dir()}")
        return folder
    return _default_data_dir()


def _default_data_dir() -> Path:
    root = repo_root()
    return (root if root is not None else Path.cwd()) / "data"


def data_dir_tag(path: str | os.PathLike | None = None) -> str:
    """What a run key adds for the data folder: "" for the default one or a folder given as a task
    option (the option is in the key already), ``@<folder>`` when ``$FPT_DATA_DIR`` chooses it (two
    folders of CIFAR-10 are two runs)."""
    if path is not None or not os.environ.get("FPT_DATA_DIR"):
        return ""
    return f"@{data_dir().resolve()}"


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


def check_gzip(path: Path) -> None:
    """Read a gzip file to its end (gzip checks its CRC-32 and length); ValueError when it fails."""
    try:
        with gzip.open(path, "rb") as stream:
            while stream.read(1 << 20):
                pass
    except (EOFError, OSError, zlib.error) as err:
        raise ValueError(f"{path} is not a complete gzip file ({err})") from err


def check_archive(path: Path) -> None:
    """Read a ``.tar.gz`` to the end: gzip checks its CRC-32 and length, tar its headers.

    The gzip stream is read to its very end first (``tarfile`` alone stops at the end-of-archive
    marker and may never reach the CRC). Raises ValueError naming the file when it is truncated
    or corrupt.
    """
    try:
        check_gzip(path)
        with tarfile.open(path, "r:gz") as tar:
            tar.getmembers()
    except (ValueError, tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise ValueError(f"{path} is not a complete .tar.gz archive ({err})") from err


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256(path: Path) -> str:
    return file_digest(path, "sha256")


def verify(path: Path, *, sha256_hex: str | None = None, md5_hex: str | None = None,
           check=check_archive) -> None:
    """ValueError naming ``path`` unless it matches the published digests and passes ``check``."""
    for algorithm, expected, title in (("sha256", sha256_hex, "SHA-256"), ("md5", md5_hex, "MD5")):
        if expected is not None and file_digest(path, algorithm) != expected.lower():
            raise ValueError(f"{path} does not match the published {title} {expected}")
    if check is not None:
        check(path)


def download(url: str, dest: str | os.PathLike, *, sha256_hex: str | None = None,
             md5_hex: str | None = None, check=check_archive, progress: bool = True) -> Path:
    """Download ``url`` to ``dest`` through ``dest.part``, resuming a previous partial download.

    Time limits and offline mode are fptlib.net's (connect and read timeouts, a total deadline).
    After the transfer the file must match ``sha256_hex`` / ``md5_hex`` (when published) and pass
    ``check`` (default: a full ``.tar.gz`` read); a file that fails is deleted and a ValueError
    says so. A file already at ``dest`` is checked the same way and, when bad, reported with the
    fix (it was not written here: this function renames only verified files). Returns ``dest``.
    """
    dest = Path(dest)
    if dest.exists():
        try:
            verify(dest, sha256_hex=sha256_hex, md5_hex=md5_hex, check=check)
        except ValueError as err:
            raise ValueError(f"{err}. It is not a file fptlib's downloader finished (those are "
                             f"verified before they get this name): delete {dest} and run again "
                             f"to download {url} afresh.") from err
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    limits = net.Limits.download()
    deadline_at = time.monotonic() + limits.deadline
    try:
        with net.open_url(url, limits, headers={"Range": f"bytes={have}-"} if have else {}) as response:
            if have and response.status != 206:  # server ignored the Range: start again
                have = 0
            length = response.headers.get("Content-Length")
            total = have + int(length) if length else None
            with open(part, "ab" if have else "wb") as out, tqdm(
                    total=total, initial=have, unit="B", unit_scale=True, disable=not progress,
                    desc=f"downloading {dest.name}") as bar:
                net.stream(response, out, deadline_at, f"downloading {url}", bar.update)
                if total is not None and out.tell() < total:
                    raise ConnectionError(f"the connection closed after {out.tell()} of "
                                          f"{total} bytes")
    except urllib.error.HTTPError as err:
        if not (err.code == 416 and have):  # 416 with a range: the file is already complete
            raise net.NetworkError(f"downloading {url} failed: HTTP {err.code} {err.reason}") from err
    except net.NetworkError:
        raise
    except (OSError, http.client.HTTPException) as err:  # timeouts are OSErrors
        kept = (f"the partial file {part} is kept and the next attempt resumes it"
                if part.exists() and part.stat().st_size else "nothing was written")
        raise net.NetworkError(f"downloading {url} failed ({err}); {kept}") from err
    try:
        verify(part, sha256_hex=sha256_hex, md5_hex=md5_hex, check=check)
    except ValueError as err:
        part.unlink(missing_ok=True)
        raise ValueError(f"download of {url} failed its integrity check and was deleted: {err}. "
                         f"Run the same command again to download it afresh.") from err
    os.replace(part, dest)
    return dest


def trust_on_first_use(path: Path, record: Path) -> str:
    """Check ``path``'s SHA-256 against ``record``, or write the record when there is none.

    For archives whose publisher gives no checksum: the first download cannot be verified, but
    every later one (another format, a fresh data folder sharing the record, a re-download)
    must be byte-identical to it. Returns the SHA-256.
    """
    digest = sha256(path)
    if record.exists():
        known = record.read_text().split()[0] if record.read_text().strip() else ""
        if known != digest:
            raise ValueError(f"{path} has SHA-256 {digest}, but the first download recorded "
                             f"{known or 'nothing'} in {record}: the server's file changed or was "
                             f"tampered with. If you trust the new file, delete {record} and run "
                             f"again.")
        return digest

    atomic_write_text(record, f"{digest}  {path.name}\n")
    return digest


def _same_file(a: Path, b: Path) -> bool:
    return a.stat().st_size == b.stat().st_size and sha256(a) == sha256(b)


def _conflicts(source: Path, target: Path) -> list[Path]:
    """Paths under ``target`` that exist with other content than their twin under ``source``."""
    if not target.exists() and not target.is_symlink():
        return []
    if source.is_dir() and target.is_dir():     # a link to a folder (data kept elsewhere) is followed
        return [c for child in source.iterdir() for c in _conflicts(child, target / child.name)]
    if source.is_file() and target.is_file() and not target.is_symlink() and _same_file(source, target):
        return []
    return [target]


def _move_in(source: Path, target: Path) -> None:
    """Move what ``source`` holds to ``target``, folder by folder; never replaces a file."""
    if not target.exists():
        os.replace(source, target)
    elif source.is_dir():
        for child in source.iterdir():
            _move_in(child, target / child.name)
    # else: an identical file is already there (checked by _conflicts): leave it


def extract_tar(archive: str | os.PathLike, into: str | os.PathLike, top: str) -> Path:
    """Extract ``archive``'s folder ``top`` into ``into/top`` without touching anything else.

    The archive is unpacked in a temporary folder inside ``into`` (same file system; members
    with ``..`` or absolute links are refused by tarfile's "data" filter). Then only what it
    brought is moved in: new files and folders are renamed into place, identical files already
    there are left alone, and a file there with other content stops the extraction before
    anything moves (a ValueError lists them). Nothing outside the archive's paths is deleted.
    """
    into = Path(into)
    into.mkdir(parents=True, exist_ok=True)
    target = into / top
    with tempfile.TemporaryDirectory(dir=into, prefix=".extract-") as tmp:
        try:
            with tarfile.open(archive, "r:*") as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, EOFError, OSError) as err:     # a member with ../, a truncated file
            kept = Path(f"{archive}.rejected")
            os.replace(archive, kept)       # set aside: the next run fetches a fresh copy
            raise ValueError(f"{archive} cannot be unpacked safely ({type(err).__name__}: {err}); moved it "
                             f"to {kept} so that the next run downloads it again (or put a good copy "
                             f"at {archive})") from None
        source = Path(tmp) / top
        if not source.exists():
            raise ValueError(f"{archive} has no folder {top!r}; it is not the expected archive")
        clash = _conflicts(source, target)
        if clash:
            shown = ", ".join(map(str, clash[:5])) + (f" and {len(clash) - 5} more" if len(clash) > 5 else "")
            raise ValueError(f"extracting {archive} would overwrite {shown}, which differ from the "
                             f"archive's files; nothing was changed. Move them out of {target} "
                             f"(or delete them if they are broken copies) and run again.")
        _move_in(source, target)
    return target
