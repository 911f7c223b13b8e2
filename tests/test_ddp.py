"""DDP through torchrun: two CPU processes (gloo) make the same update as one process on the
same global batch. Runs the real command line (``-m fptlib train``) under
``python -m torch.distributed.run``, the way a user with several GPUs would."""
import os
import socket
import subprocess
import sys

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
