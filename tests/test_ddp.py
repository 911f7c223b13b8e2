"""DDP through torchrun: two CPU processes (gloo) make the same update as one process on the
same global batch. Runs the real command line (``-m fptlib train``) under
``python -m torch.distributed.run``, the way a user with several GPUs would; packed runs
(``fptlib.train.packed``) through a small script under it."""
import os
import socket
import subprocess
import sys

import pytest
import torch

ARGS = ["train", "--task", "bit-xor", "--backbone", "gpt2", "--init", "random", "--backbone-override", "n_layer=2",
        "--backbone-override", "n_embd=32", "--backbone-override", "n_head=2", "--dropout", "0",
        "--steps", "3", "--batch-size", "8", "--grad-accum", "2", "--eval-every", "0", "--option", "eval_size=16",
        "--no-progress"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd, results_dir):
    env = {**os.environ, "FPT_RESULTS_DIR": str(results_dir), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc


def _weights(results_dir):
    (path,) = (results_dir / "weights").glob("*.pt")
    return torch.load(path, weights_only=True)


def test_two_gloo_processes_match_one_process_on_the_same_global_batch(tmp_path):
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    _run([sys.executable, "-m", "fptlib", *ARGS], single)
    proc = _run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
                 "127.0.0.1", "--master_port", str(_free_port()), "-m", "fptlib", *ARGS], ddp)
    assert proc.stdout.count("final test accuracy") == 1          # only rank 0 reports
    assert len(list(ddp.glob("*.json"))) == 1                    # ... and writes
    one, two = _weights(single), _weights(ddp)
    assert one.keys() == two.keys() and len(one) > 4
    moved = 0
    for name in one:
        assert torch.allclose(one[name], two[name], atol=1e-6, rtol=1e-5), name
    # the update is not trivially zero: compare with the untrained model
    from fptlib import experiments
    from fptlib.commands import _config_from_args
    from fptlib.cli import build_parser
    cfg = _config_from_args(build_parser().parse_args(ARGS))
    model, _ = experiments.build(cfg)
    init = dict(model.named_parameters())
    moved = sum(not torch.allclose(init[n].detach(), one[n]) for n in one)
    assert moved >= len(one) // 2


PACK_SCRIPT = '''
import json, sys
import torch
from fptlib import experiments
from fptlib.train import distributed, packed
rows, forward = [], packed.PackedModel.forward


def counting(self, flat, x, mask=None):       # the rows of each training forward on this process
    if torch.is_grad_enabled():
        rows.append(x.shape[0])
    return forward(self, flat, x, mask)


packed.PackedModel.forward = counting
configs = [{**c, "backbone_overrides": tuple(map(tuple, c["backbone_overrides"]))} for c in json.loads(sys.argv[2])]
logs = []
records = experiments.run_many([experiments.config(**c) for c in configs], pack=2, directory=sys.argv[1],
                               progress=False, checkpoint=False, compile=False, device="cpu", log=logs.append)
if not distributed.context().is_main:
    json.dump({"records": records, "rows": rows, "logs": logs}, open(sys.argv[1] + "/rank1.json", "w"))
distributed.cleanup()
'''


def _pack_configs():
    """Two runs of one pack (same seed: the random backbone is the seed's), differing in learning
    rate and length, so one run leaves the pack while the other goes on; grad_accum 2,
    evaluations midway (JSON for the script: backbone_overrides as lists)."""
    base = dict(task="bit-xor", profile="quick", backbone="gpt2", init="random", dropout=0.0,
                backbone_overrides=[["n_embd", 32], ["n_head", 2], ["n_layer", 2]], batch_size=8, grad_accum=2,
                eval_every=2, task_options=[["eval_size", 32]], seed=0)
    return [{**base, "lr": 1e-3, "steps": 3}, {**base, "lr": 3e-3, "steps": 5}]


def test_a_pack_under_two_gloo_processes_matches_the_pack_in_one_process(tmp_path):
    """A pack of 2 runs (experiments.run_many, the path of ``reproduce`` and ``sweep``: rank 0
    claims the runs for both processes) under torchrun with two CPU processes gives the
    pack of one process on the same global batches: the same parameters (atol 1e-6: the same
    arithmetic, the gradient summed over two half batches instead of one, float32 rounding ~1e-7),
    the same logged losses (averaged over the processes: the global batch's), the same
    evaluations and stops, on every process; only rank 0 writes."""
    import json

    from fptlib import experiments
    configs = _pack_configs()
    script = tmp_path / "pack.py"
    script.write_text(PACK_SCRIPT)
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    ddp.mkdir()
    as_tuples = [{**c, "backbone_overrides": tuple(map(tuple, c["backbone_overrides"]))} for c in configs]
    one = experiments.run_many([experiments.config(**c) for c in as_tuples], pack=2, directory=str(single),
                               progress=False, checkpoint=False, compile=False, device="cpu", log=lambda line: None)
    _run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
          "--master_port", str(_free_port()), str(script), str(ddp), json.dumps(configs)], ddp)
    stored = {p.name for p in ddp.glob("*.json")} - {"rank1.json"}
    assert len(stored) == 2                                      # rank 0 wrote both records, rank 1 none
    rank1 = json.loads((ddp / "rank1.json").read_text())
    # each process trains its half of every run's batch of 8: 2 runs x 4 rows for 3 steps of 2
    # micro-batches, then the longer run's 4 rows for 2 steps
    assert rank1["rows"] == [8] * 6 + [4] * 4
    assert [line for line in rank1["logs"] if line.startswith("packing")] == [f"packing 2 runs: {one[0]['key']}, "
                                                                              f"{one[1]['key']}"]
    rank1 = rank1["records"]
    for a, b in zip(one, rank1):
        assert a["key"] == b["key"] and a["steps"] == b["steps"] == b["run_config"]["steps"]
        assert a["stopped"] == b["stopped"] == "steps"
        assert [(h["step"], h["samples"]) for h in a["history"]] == [(h["step"], h["samples"]) for h in b["history"]]
        assert [h["loss"] for h in a["history"]] == pytest.approx([h["loss"] for h in b["history"]], abs=1e-5)
        assert [h["accuracy"] for h in a["history"]] == pytest.approx([h["accuracy"] for h in b["history"]], abs=1e-6)
        for split in a["final"]:
            assert a["final"][split]["loss"] == pytest.approx(b["final"][split]["loss"], abs=1e-5)
            assert a["final"][split]["accuracy"] == b["final"][split]["accuracy"]
        assert [e["step"] for e in a["evals"]] == [e["step"] for e in b["evals"]] and len(a["evals"]) >= 2
        for ea, eb in zip(a["evals"], b["evals"]):
            assert all(ea[s]["accuracy"] == eb[s]["accuracy"] for s in a["final"])
        w_one = torch.load(single / "weights" / f"{a['key']}.pt", weights_only=True)
        w_ddp = torch.load(ddp / "weights" / f"{a['key']}.pt", weights_only=True)
        assert w_one.keys() == w_ddp.keys() and len(w_one) > 4
        for name in w_one:
            assert torch.allclose(w_one[name], w_ddp[name], atol=1e-6, rtol=1e-5), (a["key"], name)
    # the runs really trained, and differently (another lr, another length)
    model, _ = experiments.build(experiments.config(**as_tuples[0]))
    init = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    weights = [torch.load(single / "weights" / f"{r['key']}.pt", weights_only=True) for r in one]
    assert all(sum(not torch.allclose(init[n], w[n]) for n in init) >= len(init) // 2 for w in weights)
    assert any(not torch.allclose(weights[0][n], weights[1][n]) for n in init)


STOP_SCRIPT = '''
import json, os, sys
import torch
sys.path.insert(0, {tests!r})
from test_packed import _build, _cfg, _task
from fptlib.train import NonFiniteLossError, distributed
from fptlib.train.packed import PackedTrainer


class NanInLastRow:
    """bit-xor, but seed 2's stream carries a NaN in its batch's last example from step 3 on:
    under two processes only rank 1's slice holds it."""

    def __init__(self, task):
        self._task = task

    def __getattr__(self, name):
        return getattr(self._task, name)

    def train_batches(self, batch_size, device, seed, start_step=0):
        for step, batch in enumerate(self._task.train_batches(batch_size, device, seed, start_step), start_step):
            if seed == 2 and step >= 3:
                batch.x[-1, 0] = float("nan")
            yield batch


def summary():
    """Three runs with their own seeds (their own data): run 1 stops at its target at the first
    evaluation, run 2's loss becomes NaN at step 4 (its 4th batch), run 0 goes on."""
    torch.set_num_threads(1)
    task = NanInLastRow(_task("bit-xor"))
    configs = [_cfg(seed=0, steps=8, eval_every=4, log_every=2),
               _cfg(seed=1, steps=8, eval_every=4, log_every=2, target_accuracy=0.01), _cfg(seed=2, steps=8, eval_every=4, log_every=2)]
    models = [_build(task, "gpt2", s) for s in (0, 1, 2)]
    out = []
    for model, result in zip(models, PackedTrainer(models, task, configs).fit()):
        if isinstance(result, NonFiniteLossError):
            out.append({{"error": str(result)}})
        else:
            out.append({{"steps": result.steps, "stopped": result.stopped, "history": result.history,
                        "evals": [e["step"] for e in result.evals], "final": result.final,
                        "params": {{n: p.tolist() for n, p in model.named_parameters() if p.requires_grad}}}})
    return out


if __name__ == "__main__":
    rank = distributed.context().rank
    json.dump(summary(), open(os.path.join(sys.argv[1], f"rank{{rank}}.json"), "w"))
    distributed.cleanup()
'''


def test_stops_in_a_pack_under_two_gloo_processes_agree_with_one_process(tmp_path):
    """PackedTrainer under torchrun: a target reached (rank 0 evaluates, every process follows) and
    a NaN in the slice of rank 1 only (the first NaN step is agreed over the processes) stop the
    same runs at the same steps on both processes as in one process, the run that goes on ends
    with the same parameters (atol 1e-6, as above) and the same logged losses."""
    import json
    from pathlib import Path
    script = tmp_path / "stops.py"
    script.write_text(STOP_SCRIPT.format(tests=str(Path(__file__).parent)))
    namespace = {"__name__": "stops"}
    exec(compile(script.read_text(), str(script), "exec"), namespace)
    one = json.loads(json.dumps(namespace["summary"]()))
    assert one[1]["stopped"] == "target" and one[1]["steps"] == 4 and "at step 4" in one[2]["error"]
    assert one[0]["stopped"] == "steps" and one[0]["steps"] == 8
    _run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
          "--master_port", str(_free_port()), str(script), str(tmp_path)], tmp_path)
    for rank in (0, 1):
        two = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert two[2] == one[2]                                        # the same NaN message, step included
        for a, b in zip(one[:2], two[:2]):
            assert (a["steps"], a["stopped"], a["evals"]) == (b["steps"], b["stopped"], b["evals"])
            assert [h["step"] for h in a["history"]] == [h["step"] for h in b["history"]]
            assert [h["loss"] for h in a["history"]] == pytest.approx([h["loss"] for h in b["history"]], abs=1e-5)
            assert {s: m["accuracy"] for s, m in a["final"].items()} == {s: m["accuracy"] for s, m in b["final"].items()}
            for name, value in a["params"].items():
                assert torch.allclose(torch.tensor(value), torch.tensor(b["params"][name]), atol=1e-6, rtol=1e-5), name
