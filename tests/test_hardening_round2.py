"""Issue #26, hardening round two: no hang on the hub, no exponential walk of untrusted pickles,
no model code run from a prompt, and every failure found before training (one test per defect)."""
from __future__ import annotations

import http.server
import os
import pickle
import re
import socketserver
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fptlib.tasks import plain_pickle

ROOT = Path(__file__).resolve().parents[1]


def fptlib_cli(args, env=None, timeout=120, stdin=""):
    """``python -m fptlib ARGS`` in a fresh process (its own hub settings), with ``env`` added."""
    full = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "fptlib", *args], cwd=ROOT, env=full, input=stdin,
                          capture_output=True, text=True, timeout=timeout)


# ---- 1. the Hugging Face path never hangs ------------------------------------------------------
class _HeadOnly(http.server.BaseHTTPRequestHandler):
    """Answers HEAD at once and never answers GET: a probe succeeds, every download hangs."""

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        self.server.stop.wait(120)

    def log_message(self, *args):
        pass


@pytest.fixture
def head_only_hub():
    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True

    server = Server(("127.0.0.1", 0), _HeadOnly)
    server.stop = threading.Event()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.stop.set()
    server.shutdown()


@pytest.mark.parametrize("backbone", ["someone/tiny-gpt2"])
def test_hub_that_never_answers_get_fails_in_bounded_time(head_only_hub, tmp_path, backbone):
    env = {"HF_ENDPOINT": head_only_hub, "FPT_READ_TIMEOUT": "2", "FPT_CONNECT_TIMEOUT": "2",
           "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0",
           "FPT_OFFLINE": "0"}
    start = time.monotonic()
    try:
        out = fptlib_cli(["train", "--task", "bit-xor", "--backbone", backbone, "--init", "random",
                          "--steps", "2", "--no-store", "--no-progress"], env=env, timeout=100)
    except subprocess.TimeoutExpired:
        pytest.fail("train hung on a hub that answers HEAD and never GET")
    assert out.returncode == 1, out.stderr[-2000:]
    assert "timed out" in out.stderr and "FPT_READ_TIMEOUT=2" in out.stderr
    assert "Traceback" not in out.stderr
    assert time.monotonic() - start < 90


def test_every_hub_request_is_bounded_even_when_the_call_passes_no_timeout(head_only_hub, monkeypatch):
    import huggingface_hub
    from huggingface_hub.utils._http import default_client_factory

    from fptlib.backbones import hub

    monkeypatch.setenv("FPT_READ_TIMEOUT", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    hub.set_hub_timeouts()
    start = time.monotonic()
    try:
        with pytest.raises(Exception) as err:       # model_info's own call: timeout=None
            huggingface_hub.get_session().get(head_only_hub + "/api/models/x", timeout=None)
    finally:
        huggingface_hub.set_client_factory(default_client_factory)
    assert "Timeout" in type(err.value).__name__
    assert time.monotonic() - start < 10


# ---- 2. untrusted pickles: bounded work ------------------------------------------------------
def test_pickle_of_shared_references_is_refused_quickly():
    a = ["x"]
    for _ in range(45):
        a = [a, a]
    data = pickle.dumps(a)
    assert len(data) < 400
    start = time.monotonic()
    with pytest.raises(pickle.UnpicklingError, match="stands for more than"):
        plain_pickle.loads(data)
    assert time.monotonic() - start < 2


def test_pickle_walk_refuses_cycles_and_depth_without_recursion():
    a = []
    a.append(a)
    with pytest.raises(pickle.UnpicklingError, match="cycle"):
        plain_pickle.loads(pickle.dumps(a))
    deep = []
    for _ in range(150):
        deep = [deep]
    with pytest.raises(pickle.UnpicklingError, match="nested more than 100"):
        plain_pickle.loads(pickle.dumps(deep))
    shared = {"k": list(range(50))}
    assert plain_pickle.loads(pickle.dumps([shared, shared])) == [shared, shared]   # a little sharing is fine


# ---- 3. never run a model's own code ------------------------------------------------------------
def test_folder_with_custom_code_is_refused_without_asking(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(
        '{"model_type": "evilmodel", "auto_map": {"AutoConfig": "evil.EvilConfig"}, "hidden_size": 8}')
    marker = tmp_path / "PWNED"
    (folder / "evil.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\n"
        "from transformers import PretrainedConfig\n"
        "class EvilConfig(PretrainedConfig):\n    model_type = 'evilmodel'\n")
    out = fptlib_cli(["describe", "--backbone", str(folder)], stdin="y\ny\n")
    assert not marker.exists(), "the model's own code ran"
    assert out.returncode == 1
    assert "never runs a model's code" in out.stderr


def test_trust_remote_code_is_false_at_every_transformers_load():
    for path in (ROOT / "fptlib").rglob("*.py"):
        text = path.read_text()
        for call in re.finditer(r"from_pretrained\(", text):
            # the call's arguments: up to the matching parenthesis
            depth, i = 1, call.end()
            while depth:
                depth += {"(": 1, ")": -1}.get(text[i], 0)
                i += 1
            assert "trust_remote_code=False" in text[call.end():i], f"{path}: {text[call.start():i]}"


# ---- 4. a sweep with a diverging rate finishes, records it, never chooses it ---------------------
TINY = ["--backbone", "gpt2", "--backbone-override", "n_layer=2", "--backbone-override", "n_embd=32",
        "--backbone-override", "n_head=2", "--init", "random"]


@pytest.mark.parametrize("pack", [["--no-pack"], ["--pack", "2"]])
def test_sweep_records_a_diverged_rate_and_prints_its_table(tmp_path, monkeypatch, capsys, pack):
    from fptlib import experiments
    from fptlib.cli import main

    monkeypatch.setenv("FPT_RESULTS_DIR", str(tmp_path / "results"))
    args = ["sweep", "--task", "bit-xor", *TINY, "--option", "n=3", "--steps", "4", "--eval-every", "2",
            "--lrs", "1e30", "1e-3", "--seeds", "0", "--no-progress", *pack]
    trained = []
    real_train = experiments.train
    real_pack = experiments.train_pack
    monkeypatch.setattr(experiments.single, "train", lambda c, **kw: (trained.append(c.lr), real_train(c, **kw))[1])
    monkeypatch.setattr(experiments.many, "train_pack",
                        lambda cs, **kw: (trained.extend(c.lr for c in cs), real_pack(cs, **kw))[1])
    assert main(args) == 0
    assert sorted(trained) == [1e-3, 1e30]
    out = capsys.readouterr().out
    assert "| 1e+30 | diverged" in out and "| 0.001 **chosen**" in out
    assert list((tmp_path / "results" / "diverged").glob("*.json"))
    trained.clear()
    assert main(args) == 0                     # a rerun trains nothing: the diverged rate is stored too
    assert trained == []
    assert "| 1e+30 | diverged" in capsys.readouterr().out


# ---- 5. the LSTM never silently trains another model ---------------------------------------------
@pytest.mark.parametrize("changes", [{"layers": -2}, {"layers": 0},
                                     {"backbone_overrides": (("hiden_size", 4),)},
                                     {"hidden_size": 0}])
def test_lstm_settings_it_would_ignore_or_misread_are_refused(changes):
    from fptlib import experiments

    with pytest.raises(ValueError, match="layers|override|hidden_size"):
        experiments.config("bit-xor", "quick", "lstm", **changes)


def test_lstm_backbone_refuses_bad_depth_and_overrides():
    from fptlib.backbones import load_backbone

    for kwargs in ({"layers": -2}, {"layers": 0}, {"config_overrides": {"hiden_size": 4}}):
        with pytest.raises(ValueError):
            load_backbone("lstm", init="random", **kwargs)
    assert load_backbone("lstm", init="random", layers=1, hidden_size=8).num_layers == 1


# ---- 7 and 10: every failure found before the first step -------------------------------------------
@pytest.fixture
def no_training(monkeypatch):
    """Any attempt to build a model (the first thing training does) fails the test."""
    from fptlib import experiments

    def build(*args, **kwargs):
        raise AssertionError("a model was built: the problem was not found before training")

    monkeypatch.setattr(experiments.models, "build", build)


RUN = ["train", "--task", "bit-xor", *TINY, "--option", "n=3", "--steps", "2", "--no-progress"]


def run_cli(args, capsys):
    from fptlib.cli import main

    code = main(args)
    return code, capsys.readouterr().err


def test_results_dir_that_is_a_file_is_refused_before_training(tmp_path, capsys, no_training):
    (tmp_path / "file").write_text("x")
    code, err = run_cli([*RUN, "--results-dir", str(tmp_path / "file")], capsys)
    assert code == 1 and "is a file, not a folder" in err and str(tmp_path / "file") in err
    code, err = run_cli([*RUN, "--results-dir", str(tmp_path / "file" / "sub")], capsys)
    assert code == 1 and "cannot be written" in err


def test_checkpoint_dir_that_cannot_be_written_is_refused_before_training(tmp_path, capsys, no_training):
    (tmp_path / "file").write_text("x")
    code, err = run_cli([*RUN, "--results-dir", str(tmp_path / "r"), "--checkpoint-dir",
                         str(tmp_path / "file" / "ck")], capsys)
    assert code == 1 and "--checkpoint-dir" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_results_dir_is_refused_before_training(tmp_path, capsys, no_training):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    code, err = run_cli([*RUN, "--results-dir", str(folder)], capsys)
    assert code == 1 and "cannot be written" in err


def test_demo_checks_its_output_and_backbone_before_training(tmp_path, capsys, no_training):
    (tmp_path / "file").write_text("x")
    code, err = run_cli(["demo", *TINY[:2], "--steps", "2", "--out", str(tmp_path / "file" / "a.png"),
                         "--results-dir", str(tmp_path / "r"), "--no-progress"], capsys)
    assert code == 1 and "--out" in err
    code, err = run_cli(["demo", "--backbone", "lstm", "--steps", "2", "--out", str(tmp_path / "a.png"),
                         "--results-dir", str(tmp_path / "r"), "--no-progress"], capsys)
    assert code == 1 and "no attention" in err


def test_sweep_with_a_seed_given_twice_is_refused(tmp_path, capsys, no_training):
    code, err = run_cli(["sweep", "--task", "bit-xor", *TINY, "--lrs", "1e-3", "--seeds", "0", "0",
                         "--results-dir", str(tmp_path), "--no-progress"], capsys)
    assert code == 1 and "seed 0 given twice" in err


@pytest.mark.parametrize("content", ["[]", "folder", "{not json"])
def test_a_damaged_manifest_is_found_before_training(tmp_path, content):
    from fptlib import experiments, files

    folder = files.evidence_dir(tmp_path)
    folder.mkdir(parents=True)
    if content == "folder":
        (folder / files.MANIFEST).mkdir()
    else:
        (folder / files.MANIFEST).write_text(content)
    cfg = experiments.config("bit-xor", "evidence", "lstm")
    with pytest.raises(ValueError, match="manifest.json is .*git checkout"):
        experiments.check_outputs([cfg], tmp_path)


def test_a_full_disk_names_the_file(tmp_path, monkeypatch):
    import torch

    from fptlib.files import WriteError
    from fptlib.train.checkpoint import atomic_save

    def full(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(WriteError, match=r"ckpt\.pt.*disk full"):
        atomic_save({"step": 1}, tmp_path / "ckpt.pt")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flags, words", [(["--seed", str(2**70)], "seed="),
                                          (["--batch-size", "100000000"], "batch_size=")])
def test_out_of_range_numbers_are_refused_before_training(tmp_path, capsys, no_training, flags, words):
    code, err = run_cli([*RUN, "--results-dir", str(tmp_path), *flags], capsys)
    assert code == 1 and words in err


def test_fpt_device_names_the_variable(monkeypatch):
    from fptlib import env

    monkeypatch.setenv("FPT_DEVICE", "tpu")
    with pytest.raises(ValueError, match=r"\$FPT_DEVICE"):
        env.pick_device()


def test_a_folder_without_config_is_named(tmp_path):
    from fptlib.backbones import load_backbone

    with pytest.raises(ValueError, match="has no config.json"):
        load_backbone(str(tmp_path), init="random")


def test_results_dir_file_is_not_no_results_yet(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code, err = run_cli(["results", "--results-dir", str(tmp_path / "file")], capsys)
    assert code == 1 and "is a file, not a folder" in err


# ---- 6. one malformed record never crashes `results` ------------------------------------------------
@pytest.mark.parametrize("record, words", [
    ({"key": "w1", "backbone": "str"}, "'backbone' is a str"),
    ({"key": "w2", "final": "oops"}, "'final' is a str"),
    ({"key": "w3", "final": {"test": 5}}, "final.test is a int"),
    ({"key": "w4", "final": {"test": {"accuracy": "high"}}}, "final.test.accuracy is 'high'"),
    ({"key": "w5", "evals": [{"step": 1, "test": {"accuracy": "x"}}], "final": {"test": {"accuracy": 0.5}}},
     "evals\\[0\\].test.accuracy"),
])
def test_a_malformed_record_is_skipped_naming_its_file(tmp_path, capsys, record, words):
    import json

    from fptlib import results
    from fptlib.cli import main

    (tmp_path / f"{record['key']}.json").write_text(json.dumps(record))
    assert results.load(tmp_path) == []
    assert main(["results", "--results-dir", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert f"{record['key']}.json" in err and re.search(words, err) and "Traceback" not in err


# ---- 8. no silent misread -------------------------------------------------------------------------
def _cifar_folder(root: Path, pixel=7, label=3):
    import numpy as np

    from fptlib.tasks import images

    folder = root / images.CIFAR_FOLDER
    folder.mkdir(parents=True)
    data = np.full((2, 3072), pixel, dtype=np.float64 if isinstance(pixel, float) else np.int64)
    for name in images.CIFAR_TRAIN + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps({"data": data, "labels": [label, 1]}))
    return folder


def test_run_key_follows_fpt_data_dir(tmp_path, monkeypatch):
    from fptlib import experiments

    for name in ("a", "b"):
        _cifar_folder(tmp_path / name)
    keys = set()
    for name in ("a", "b"):
        monkeypatch.setenv("FPT_DATA_DIR", str(tmp_path / name))
        keys.add(experiments.config("cifar10", "quick", "lstm").key)
    assert len(keys) == 2
    monkeypatch.delenv("FPT_DATA_DIR")
    assert "data" not in experiments.config("cifar10", "quick", "lstm").identity()   # default keys as before


@pytest.mark.parametrize("pixel, label, words", [(300.7, 3, "'data'"), (7, 42, "'labels'"), (7, -1, "'labels'"),
                                                 (300, 3, "'data'")])
def test_cifar_values_out_of_range_are_refused(tmp_path, pixel, label, words):
    from fptlib.tasks import images

    folder = _cifar_folder(tmp_path, pixel, label)
    with pytest.raises(ValueError, match=f"data_batch_1: {words}.*outside the whole numbers"):
        images.read_cifar_batch(folder / "data_batch_1")


def test_patch_size_zero_is_refused():
    from fptlib import tasks

    with pytest.raises(ValueError, match="patch_size"):
        tasks.get("digits", patch_size=0)


def test_fold_label_that_is_not_whole_is_refused():
    from fptlib.tasks import homology

    with pytest.raises(ValueError, match="fold_label 3.7 is not an integer"):
        homology.check_record({"primary": "MKV", "fold_label": 3.7}, "here")
    assert homology.check_record({"primary": "MKV", "fold_label": 3.0}, "here") == ("MKV", 3)


@pytest.mark.parametrize("line, words", [("( [MAX 1 2 ] )\t1", "evaluates to 2, the target says 1"),
                                         ("[MAX 1 2\t2", "never closed"),
                                         ("[MAX 1 2 ] ]\t2", "unbalanced"),
                                         ("\t2", "never closed"),
                                         ("[MAX 1 2 ]\t²", "target '²' is not a digit")])
def test_listops_lines_that_do_not_hold_are_refused(tmp_path, line, words):
    from fptlib.tasks import listops

    path = tmp_path / "basic_test.tsv"
    path.write_text(f"Source\tTarget\n{line}\n")
    with pytest.raises(ValueError, match=re.escape(words)):
        listops.read_tsv(path)
    path.unlink()
    path.mkdir()
    with pytest.raises(ValueError, match="not a file"):
        listops.read_tsv(path)


def test_setup_checks_its_arguments(tmp_path):
    from fptlib import notebook

    for kwargs, words in (({"results": ""}, "results=''"), ({"seed": "a"}, "seed='a'"),
                          ({"results": str(tmp_path / "f")}, "is a file")):
        (tmp_path / "f").write_text("x")
        with pytest.raises(ValueError, match=re.escape(words)):
            notebook.setup(quiet=True, matplotlib_inline=False, **kwargs)


def test_an_offline_switch_that_is_neither_on_nor_off_is_an_error(monkeypatch):
    from fptlib import net

    monkeypatch.setenv("FPT_OFFLINE", "2")
    with pytest.raises(ValueError, match=r"\$FPT_OFFLINE='2'"):
        net.offline("https://example.org")
    monkeypatch.setenv("FPT_OFFLINE", "1")
    assert net.offline("https://example.org")


# ---- 9. bad files: an error naming the file and the fix ---------------------------------------------
def test_idx_files_that_do_not_hold_are_refused(tmp_path):
    import gzip

    from fptlib.tasks import images

    full = gzip.compress(b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + bytes([1, 2, 3]))
    (tmp_path / "cut.gz").write_bytes(full[:-6])
    with pytest.raises(ValueError, match="cut.gz cannot be read.*truncated or damaged"):
        images.read_idx(tmp_path / "cut.gz")
    folder = tmp_path / "mnist"
    folder.mkdir()
    (xs, ys) = images.IDX_FILES["test"]
    (folder / xs).write_bytes(b"\x00\x00\x08\x03" + b"".join(n.to_bytes(4, "big") for n in (2, 2, 2)) + bytes(8))
    (folder / ys).write_bytes(b"\x00\x00\x08\x01" + (2).to_bytes(4, "big") + bytes([1, 200]))
    with pytest.raises(ValueError, match=r"\(labels\): 1 value\(s\) outside the whole numbers 0\.\.9"):
        images.read_idx_pair(folder, "test")
    (folder / xs).write_bytes(b"\x00\x00\x08\x02" + b"".join(n.to_bytes(4, "big") for n in (2, 4)) + bytes(8))
    images.read_idx_pair.cache_clear()
    with pytest.raises(ValueError, match="expected images N x H x W"):
        images.read_idx_pair(folder, "test")


def test_tape_json_nested_deep_is_refused_naming_the_file(tmp_path):
    from fptlib.tasks import homology

    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="deep.json is JSON nested too deep"):
        homology.read_json(path)


def test_fifo_as_data_or_record_never_blocks(tmp_path, capsys):
    from fptlib import results
    from fptlib.tasks import lmdb_file

    folder = tmp_path / "lmdb"
    folder.mkdir()
    os.mkfifo(folder / "data.mdb")
    with pytest.raises(ValueError, match="not a regular file"):
        lmdb_file.check(folder)
    os.mkfifo(tmp_path / "k.json")
    assert results.load(tmp_path) == []
    assert "k.json" in capsys.readouterr().err


def test_fpt_data_dir_that_is_not_a_folder_is_named(tmp_path, monkeypatch):
    from fptlib.tasks.download import data_dir

    (tmp_path / "file").write_text("x")
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    for bad in ("file", "loop"):
        monkeypatch.setenv("FPT_DATA_DIR", str(tmp_path / bad))
        with pytest.raises(ValueError, match=r"\$FPT_DATA_DIR=.* is not a folder"):
            data_dir()


# ---- 11. the bertviz scripts are served behind Jupyter's authentication --------------------------------
def test_scripts_are_served_only_with_the_servers_token(tmp_path):
    import json
    import socket
    import urllib.error
    import urllib.request

    pytest.importorskip("jupyter_server")
    from fptlib import jupyter_static

    js = tmp_path / "js"
    for rel in jupyter_static.FILES.values():
        (js / rel).parent.mkdir(parents=True, exist_ok=True)
        (js / rel).write_text("// script")
    (js / "requirejs" / "package.json").write_text("{}")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = "t0ken"
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": {"fptlib.jupyter_static": True}}}))
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}", "--allow-root"],
        env={**os.environ, "FPT_JS_DIR": str(js), "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"),
             "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt")},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def status(rel, auth):
        request = urllib.request.Request(f"http://127.0.0.1:{port}/fptlib/js/{rel}",
                                         headers={"Authorization": f"token {token}"} if auth else {})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:    # follows a redirect to /login
                return response.read().decode() if response.url.endswith(rel) else "login page"
        except urllib.error.HTTPError as err:
            return err.code

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status("requirejs/require.js", True)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("jupyter server did not start")
                time.sleep(0.5)
        assert status("requirejs/require.js", True) == "// script"
        assert status("requirejs/require.js", False) == "login page"     # no token: not the file
        assert status("requirejs/package.json", True) == 404              # only the three scripts
    finally:
        server.terminate()
        server.wait(20)


def _tar(archive: Path, member: str, data: bytes) -> Path:
    import io
    import tarfile

    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo(member)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return archive


def test_an_archive_member_outside_its_folder_is_refused_and_set_aside(tmp_path):
    from fptlib.tasks.download import extract_tar

    archive = _tar(tmp_path / "data.tar.gz", "../evil.txt", b"evil")
    with pytest.raises(ValueError, match=r"cannot be unpacked safely.*downloads it again"):
        extract_tar(archive, tmp_path / "into", "top")
    assert not archive.exists() and (tmp_path / "data.tar.gz.rejected").exists()
    assert not (tmp_path / "evil.txt").exists()


def test_a_symlinked_empty_data_folder_is_filled(tmp_path):
    from fptlib.tasks.download import extract_tar

    archive = _tar(tmp_path / "data.tar.gz", "top/a.txt", b"a")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "into").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "into" / "top")
    extract_tar(archive, tmp_path / "into", "top")
    assert (tmp_path / "elsewhere" / "a.txt").read_text() == "a"


def test_weights_files_that_do_not_hold_are_named(tmp_path):
    import torch

    from fptlib.train.checkpoint import atomic_save, load_trained_state, load_weights

    atomic_save({"w": torch.zeros(64, 64)}, tmp_path / "w.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "w.pt").read_bytes()[:300])
    with pytest.raises(ValueError, match=r"cut.pt cannot be read.*truncated"):
        load_weights(tmp_path / "cut.pt")

    torch.save({"w": Path("x")}, tmp_path / "pickled.pt")        # an object: unpickling would call a class
    with pytest.raises(ValueError, match="refusing to load .*pickled.pt") as err:
        load_weights(tmp_path / "pickled.pt")
    assert "weights_only=False" not in str(err.value)
    model = torch.nn.Linear(2, 2)
    for state, words in (({"weight": torch.zeros(2, 2), "extra": torch.zeros(1)}, "'extra': the model has no"),
                         ({"weight": torch.zeros(3, 2)}, "shape \\(3, 2\\)")):
        with pytest.raises(ValueError, match=words):
            load_trained_state(model, state, where="the checkpoint X")


def test_a_checkpoint_with_a_string_step_is_named(tmp_path):
    from fptlib.train import checkpoint as ckpt

    saved = {k: {} for k in ckpt.REQUIRED}
    saved.update(format=ckpt.FORMAT, step="ten")
    ckpt.atomic_save(saved, tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match="says step 'ten'"):
        ckpt.load(tmp_path / "checkpoint.pt")
