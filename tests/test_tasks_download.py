"""Downloads: resume from .part, integrity check, atomic extraction; a local HTTP server."""
import gzip
import hashlib
import http.server
import io
import random
import tarfile
import threading

import pytest

from fptlib import net
from fptlib.tasks import download as dl
from fptlib.tasks import homology


def make_archive(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def server():
    """Serves ``state['files'][path]``, else ``state['body']``, honouring ``Range: bytes=N-``;
    records ranges and paths."""
    state = {"body": b"", "ranges": [], "files": {}, "paths": []}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            state["paths"].append(self.path)
            body, start = state["files"].get(self.path, state["body"]), 0
            rng = self.headers.get("Range")
            state["ranges"].append(rng)
            if rng:
                start = int(rng.split("=")[1].rstrip("-"))
                self.send_response(206)
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            self.wfile.write(body[start: state.get("cut_at")])   # cut_at: the server drops out

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{httpd.server_address[1]}/archive.tar.gz"
    yield state
    httpd.shutdown()


def test_download_resumes_a_partial_file(tmp_path, server):
    payload = random.Random(0).randbytes(50_000)                          # incompressible
    body = make_archive({"top/a.txt": payload, "top/b.txt": bytes(range(256)) * 100})
    assert len(body) > 40_000
    server["body"] = body
    dest = tmp_path / "archive.tar.gz"
    (tmp_path / "archive.tar.gz.part").write_bytes(body[:1000])
    dl.download(server["url"], dest, progress=False)
    assert dest.read_bytes() == body and not (tmp_path / "archive.tar.gz.part").exists()
    assert server["ranges"] == ["bytes=1000-"]
    folder = dl.extract_tar(dest, tmp_path / "out", "top")
    assert (folder / "a.txt").read_bytes() == payload
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["top"]   # no temp folder left


def test_a_connection_closed_early_keeps_the_part_file_and_resumes(tmp_path, server):
    body = make_archive({"top/a.txt": random.Random(3).randbytes(30_000)})
    server["body"], server["cut_at"] = body, 10_000
    dest = tmp_path / "archive.tar.gz"
    with pytest.raises(RuntimeError, match=r"closed after 10000 of \d+ bytes.*kept"):
        dl.download(server["url"], dest, progress=False)
    assert (tmp_path / "archive.tar.gz.part").stat().st_size == 10_000 and not dest.exists()
    server["cut_at"] = None
    assert dl.download(server["url"], dest, progress=False).read_bytes() == body
    assert server["ranges"] == [None, "bytes=10000-"]


def test_corrupt_download_is_detected_reported_and_removed(tmp_path, server):
    body = make_archive({"top/a.txt": random.Random(1).randbytes(20_000)})
    server["body"] = body[: len(body) // 2]                              # truncated transfer
    dest = tmp_path / "archive.tar.gz"
    with pytest.raises(ValueError, match="integrity check and was deleted"):
        dl.download(server["url"], dest, progress=False)
    assert list(tmp_path.iterdir()) == []
    flipped = bytearray(body)
    flipped[len(body) // 2] ^= 0xFF                                      # one bad byte: CRC fails
    server["body"] = bytes(flipped)
    with pytest.raises(ValueError, match="not a complete .tar.gz"):
        dl.download(server["url"], dest, progress=False)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="SHA-256"):
        server["body"] = body
        dl.download(server["url"], dest, sha256_hex="0" * 64, progress=False)


def test_homology_downloads_extracts_and_reads_when_online(tmp_path, server, monkeypatch):
    import json
    rows = [{"primary": "MKV", "fold_label": 7, "protein_length": 3}]
    files = {f"remote_homology/remote_homology_{t}.json": json.dumps(rows).encode()
             for t in homology.SPLITS.values()}
    server["body"] = make_archive(files)
    monkeypatch.setitem(homology.URLS, "json", server["url"])
    task = homology.RemoteHomology(data_dir=tmp_path, format="json")
    assert task.format == "json" and task.splits()["val"].y.tolist() == [7]
    # the archive is removed; its SHA-256 is recorded (trust on first use)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["remote_homology",
                                                          "remote_homology_json.tar.gz.sha256"]


def test_data_dir_order_and_reachability(tmp_path, monkeypatch):
    monkeypatch.setenv("FPT_DATA_DIR", str(tmp_path))
    assert dl.data_dir() == tmp_path and dl.data_dir("elsewhere").name == "elsewhere"
    assert "$FPT_DATA_DIR" in dl.data_dir_explained()
    monkeypatch.delenv("FPT_DATA_DIR")
    assert dl.data_dir().name == "data"
    assert net.reachable("http://127.0.0.1:9/") is False            # nothing listens


def test_fetch_keeps_the_users_files(tmp_path, server, monkeypatch):
    """Defect: fetching TAPE's LMDB archive ran rmtree on remote_homology/ (user files lost)."""
    folder = tmp_path / "remote_homology"
    (folder / "notes").mkdir(parents=True)
    mine = {folder / "remote_homology_train.json": b'[{"mine": 1}]',
            folder / "notes" / "todo.txt": b"my notes",
            folder / "remote_homology_valid.lmdb" / "extra.txt": b"kept too"}
    for path, data in mine.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    files = {f"remote_homology/remote_homology_{t}.lmdb/data.mdb": f"db {t}".encode()
             for t in homology.SPLITS.values()}
    server["body"] = make_archive(files)
    monkeypatch.setitem(homology.URLS, "lmdb", server["url"])
    homology.fetch(tmp_path, "lmdb", progress=False)
    for path, data in mine.items():
        assert path.read_bytes() == data
    for name, data in files.items():
        assert (tmp_path / name).read_bytes() == data
    assert not any(p.name.startswith(".extract-") for p in tmp_path.iterdir())
    homology.fetch(tmp_path, "lmdb", progress=False)          # again: identical files, no error
    broken = tmp_path / "remote_homology" / "remote_homology_train.lmdb" / "data.mdb"
    broken.write_bytes(b"db tr")                              # a user's truncated copy
    with pytest.raises(ValueError, match="would overwrite .*remote_homology_train.lmdb/data.mdb"):
        homology.fetch(tmp_path, "lmdb", progress=False)
    assert broken.read_bytes() == b"db tr"                    # refused, not overwritten
    assert all(path.read_bytes() == data for path, data in mine.items())


def test_a_bad_file_at_the_final_name_is_reported_with_the_fix(tmp_path, server):
    """Defect: a truncated archive already at its final name was kept and failed every retry."""
    body = make_archive({"top/a.txt": random.Random(2).randbytes(20_000)})
    server["body"] = body
    dest = tmp_path / "archive.tar.gz"
    dest.write_bytes(body[: len(body) // 2])
    with pytest.raises(ValueError, match=r"not a complete .tar.gz.*delete .*archive.tar.gz and run again"):
        dl.download(server["url"], dest, progress=False)
    assert server["ranges"] == []                             # checked before any transfer
    dest.unlink()
    assert dl.download(server["url"], dest, progress=False).read_bytes() == body
    assert dl.download(server["url"], dest, progress=False) == dest   # a good file is reused


def test_tape_archive_sha256_is_trusted_on_first_use(tmp_path, server, monkeypatch):
    files = {f"remote_homology/remote_homology_{t}.lmdb/data.mdb": b"v1"
             for t in homology.SPLITS.values()}
    server["body"] = make_archive(files)
    monkeypatch.setitem(homology.URLS, "lmdb", server["url"])
    homology.fetch(tmp_path, "lmdb", progress=False)
    record = tmp_path / "remote_homology_lmdb.tar.gz.sha256"
    assert record.read_text().split()[0] == hashlib.sha256(server["body"]).hexdigest()
    other = tmp_path / "again"
    other.mkdir()
    (other / record.name).write_text(record.read_text())
    server["body"] = make_archive({k: b"v2" for k in files})  # the server's file changed
    with pytest.raises(ValueError, match="first download recorded"):
        homology.fetch(other, "lmdb", progress=False)
    assert not (other / "remote_homology").exists()


def idx_gz(array) -> bytes:
    """An IDX file of unsigned bytes (MNIST's format), gzipped."""
    header = b"\x00\x00\x08" + bytes([array.ndim]) + b"".join(
        n.to_bytes(4, "big") for n in array.shape)
    return gzip.compress(header + array.astype("uint8").tobytes())


def test_mnist_files_come_through_our_downloader_with_torchvisions_md5(tmp_path, server, monkeypatch):
    import numpy as np
    import torchvision.datasets as tvd

    from fptlib.tasks import images

    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte.gz": rng.integers(0, 255, (6, 28, 28)),
              "train-labels-idx1-ubyte.gz": np.arange(6) % 10,
              "t10k-images-idx3-ubyte.gz": rng.integers(0, 255, (4, 28, 28)),
              "t10k-labels-idx1-ubyte.gz": np.arange(4)}
    bodies = {name: idx_gz(a) for name, a in arrays.items()}
    server["files"] = {f"/mnist/{name}": body for name, body in bodies.items()}
    base = server["url"].rsplit("/", 1)[0]
    resources = [(name, hashlib.md5(body).hexdigest()) for name, body in bodies.items()]
    monkeypatch.setattr(tvd.MNIST, "resources", resources)
    monkeypatch.setattr(tvd.MNIST, "mirrors", ["http://127.0.0.1:9/mnist/", base + "/mnist/"])
    folder = images.download_files("mnist", tmp_path)           # first mirror refuses: next one
    assert folder == tmp_path / "MNIST" / "raw"
    x, y = images.read_idx_pair(folder, "train")
    assert x.shape == (6, 1, 28, 28) and y.tolist() == list(range(6))
    assert sorted(p.name for p in folder.iterdir()) == sorted(bodies)   # no .part left
    bad = tmp_path / "other"
    monkeypatch.setattr(tvd.MNIST, "resources", [(resources[0][0], "0" * 32)])
    with pytest.raises(RuntimeError, match="MD5") as err:
        images.download_files("mnist", bad)
    assert "127.0.0.1:9" in str(err.value)                      # both mirrors are reported
    assert not list((bad / "MNIST" / "raw").iterdir())           # the bad file was deleted
