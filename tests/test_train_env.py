"""fptlib.env: device choice, autocast policy, what a record says about the machine."""
import pytest
import torch

from fptlib import env


def test_device_choice_and_clear_errors():
    assert env.pick_device("cpu") == torch.device("cpu")
    assert env.pick_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        env.pick_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            env.pick_device("cuda")


def test_autocast_policy_is_off_on_cpu_unless_asked():
    cpu = torch.device("cpu")
    assert env.amp_dtype("auto", cpu) is None and env.amp_dtype("off", cpu) is None
    assert env.amp_dtype("bf16", cpu) == torch.bfloat16
    with pytest.raises(ValueError, match="fp16.*needs a CUDA device"):
        env.amp_dtype("fp16", cpu)
    with pytest.raises(ValueError, match="choose one of"):
        env.amp_dtype("fp8", cpu)


def test_machine_description_versions_and_commit():
    assert env.hardware("cpu").startswith("cpu: ")
    versions = env.package_versions()
    assert versions["torch"].startswith(torch.__version__.split("+")[0]) and "python" in versions
    commit = env.git_commit()
    assert commit == "unknown" or len(commit.split("+")[0]) == 12


def test_busy_cpu_gets_one_thread_unless_omp_is_set(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        monkeypatch.setattr(env.os, "getloadavg", lambda: (99.0, 99.0, 99.0))
        torch.set_num_threads(2)
        assert "1 thread" in env.tune_cpu_threads(torch.device("cpu")) and torch.get_num_threads() == 1
        torch.set_num_threads(2)
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        assert env.tune_cpu_threads(torch.device("cpu")) is None and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
