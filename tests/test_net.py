"""Network calls: HTTP probe (not a TCP connect), time limits, offline mode, every download path.

Servers here listen on 127.0.0.1 only, in daemon threads that stop themselves (fixture exit or
a 30 s cap). Time limits are made small through the environment variables of fptlib.net, and
FPT_OFFLINE=1 keeps every other host out of reach (loopback is exempt).
"""
import http.server
import socket
import threading
import time

import pytest

from fptlib import net
from fptlib.tasks import download as dl
from fptlib.tasks import homology, images
from fptlib import tasks

LIMIT_S = 0.4          # connect / read / probe limits used in these tests
DEADLINE_S = 1.0       # a whole download
SLACK_S = 2.5          # what a failure may take at most, start-up included


@pytest.fixture(autouse=True)
def small_limits(monkeypatch):
    for name in ("FPT_CONNECT_TIMEOUT", "FPT_READ_TIMEOUT", "FPT_PROBE_DEADLINE"):
        monkeypatch.setenv(name, str(LIMIT_S))
    monkeypatch.setenv("FPT_DOWNLOAD_DEADLINE", str(DEADLINE_S))
    monkeypatch.setenv("FPT_OFFLINE", "1")     # no remote host, ever; 127.0.0.1 stays allowed
    monkeypatch.setattr(net, "_PROBES", {})


@pytest.fixture
def silent_url():
    """A host on 127.0.0.1 that accepts connections and never sends a byte."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    srv.settimeout(0.05)
    stop, held = threading.Event(), []

    def loop():
        end = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < end:
            try:
                held.append(srv.accept()[0])
            except OSError:
                pass
        for conn in held:
            conn.close()
        srv.close()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}/data/file.tar.gz"
    stop.set()
    thread.join(2)


@pytest.fixture
def http_server():
    """An HTTP server on 127.0.0.1: 404 for HEAD, a slow drip of bytes for GET."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(404)
            self.end_headers()

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(100):      # 10 s in all, each byte well inside the read timeout
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.1)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/file.tar.gz"
    httpd.shutdown()
    httpd.server_close()


def timed(fn, *args, **kwargs):
    start = time.monotonic()
    try:
        return fn(*args, **kwargs), time.monotonic() - start
    except Exception as err:  # the test inspects it
        return err, time.monotonic() - start


def test_probe_wants_an_http_answer_not_a_tcp_connect(silent_url, http_server):
    answer, took = timed(net.reachable, silent_url)
    assert answer is False and took < SLACK_S          # old probe: True (TCP connect succeeded)
    assert net.reachable(http_server) is True          # a 404 is an answer: the host is there
    assert net.reachable("http://127.0.0.1:9/") is False  # nothing listens


def test_download_from_a_silent_host_fails_within_its_limits(tmp_path, silent_url):
    err, took = timed(dl.download, silent_url, tmp_path / "file.tar.gz", progress=False)
    assert isinstance(err, RuntimeError) and took < SLACK_S
    assert silent_url in str(err) and not (tmp_path / "file.tar.gz").exists()


def test_a_dripping_server_is_cut_at_the_total_deadline(tmp_path, http_server):
    err, took = timed(dl.download, http_server, tmp_path / "file.tar.gz", progress=False)
    assert isinstance(err, RuntimeError) and "deadline" in str(err)
    assert DEADLINE_S <= took < DEADLINE_S + SLACK_S
    assert (tmp_path / "file.tar.gz.part").exists()     # kept: the next attempt resumes it


def test_tape_paths_fail_within_their_limits(tmp_path, silent_url, monkeypatch):
    monkeypatch.setitem(homology.URLS, "lmdb", silent_url)
    ready, source, how = homology.RemoteHomology.availability(data_dir=tmp_path)
    assert not ready and "missing" in source              # not "download": nobody answers
    err, took = timed(homology.RemoteHomology, data_dir=tmp_path)
    assert isinstance(err, FileNotFoundError) and took < SLACK_S
    err, took = timed(homology.fetch, tmp_path, "lmdb", progress=False)
    assert isinstance(err, RuntimeError) and took < SLACK_S


@pytest.mark.parametrize("dataset", ["cifar10", "mnist"])
def test_image_download_paths_fail_within_their_limits(tmp_path, silent_url, monkeypatch, dataset):
    import torchvision.datasets as tvd

    monkeypatch.setitem(images.PROBE_URL, dataset, silent_url)
    monkeypatch.setattr(tvd.CIFAR10, "url", silent_url)
    monkeypatch.setattr(tvd.MNIST, "mirrors", [silent_url.rsplit("/", 1)[0] + "/"])
    err, took = timed(images.plan, dataset, "download", tmp_path)
    assert isinstance(err, FileNotFoundError) and took < SLACK_S
    if dataset == "cifar10":
        assert not tasks.available(data_dir=tmp_path)["cifar10"]["ready"]
    err, took = timed(images.download_files, dataset, tmp_path)
    assert isinstance(err, RuntimeError) and took < SLACK_S
    assert silent_url.split("/data")[0] in str(err)


def test_hub_path_fails_within_its_limits(silent_url, monkeypatch):
    from transformers import GPT2Model

    from fptlib.backbones import hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", silent_url.split("/data")[0])
    calls = []
    monkeypatch.setattr(GPT2Model, "from_pretrained",
                        classmethod(lambda cls, *a, **k: calls.append(a)))
    err, took = timed(hub.from_hub, GPT2Model, ("fpt-test/not-cached",))
    assert isinstance(err, hub.BackboneUnavailable) and took < SLACK_S and calls == []


def test_hub_downloads_get_our_timeouts(monkeypatch):
    from huggingface_hub import constants
    from transformers import GPT2Model

    from fptlib.backbones import hub

    monkeypatch.delenv("HF_HUB_ETAG_TIMEOUT", raising=False)
    monkeypatch.delenv("HF_HUB_DOWNLOAD_TIMEOUT", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_ETAG_TIMEOUT", 10)
    monkeypatch.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", 10)
    monkeypatch.setattr(hub, "hub_reachable", lambda: True)
    seen = []
    monkeypatch.setattr(GPT2Model, "from_pretrained", classmethod(lambda cls, *a, **k: seen.append(
        (constants.HF_HUB_ETAG_TIMEOUT, constants.HF_HUB_DOWNLOAD_TIMEOUT))))
    hub.from_hub(GPT2Model, ("fpt-test/not-cached",))
    assert seen == [(LIMIT_S, LIMIT_S)]


def test_offline_is_one_switch(monkeypatch, http_server):
    attempts = []
    monkeypatch.setattr(socket, "create_connection",
                        lambda *a, **k: attempts.append(a) or (_ for _ in ()).throw(OSError("no")))
    monkeypatch.setenv("FPT_OFFLINE", "1")
    assert net.reachable("https://example.org/x") is False
    with pytest.raises(RuntimeError, match="FPT_OFFLINE"):
        dl.download("https://example.org/x.tar.gz", "unused.tar.gz", progress=False)
    assert attempts == []                                  # not one connection attempt
    assert "FPT_OFFLINE set" in images.missing_message("cifar10", images.Path("/nowhere"))
    monkeypatch.setenv("FPT_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert net.offline(hub=True) and not net.offline()     # the hub's switch is the hub's only
    monkeypatch.setenv("FPT_OFFLINE", "yes")
    assert net.offline("http://127.0.0.1:8/") is False     # a local mirror stays allowed


def test_bad_time_limit_names_the_variable(monkeypatch):
    monkeypatch.setenv("FPT_READ_TIMEOUT", "soon")
    with pytest.raises(ValueError, match=r"\$FPT_READ_TIMEOUT='soon'"):
        net.Limits.download()
