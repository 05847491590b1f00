"""Faults and resume: SIGKILL mid-training then ``--resume`` ends with the uninterrupted run's
weights, and a crash during a checkpoint save never leaves ``last_checkpoint`` on a bad file."""

import multiprocessing
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from shapes_runs import (  # noqa: F401  (fixtures)
    one_torch_thread,
    shapes_distill_cfg,
    shapes_root,
    subprocess_env,
    write_cfg,
)
from tiny_models import ROOT

from csgr.engine.checkpoint import AtomicCheckpointer

TRAIN_NET = os.path.join(ROOT, "tools", "train_net.py")
KILL_TIMEOUT_S = 240


def _train_cmd(config_file, output_dir, resume=False):
    return (
        [sys.executable, TRAIN_NET, "--config-file", config_file]
        + (["--resume"] if resume else [])
        + ["OUTPUT_DIR", str(output_dir)]
    )


def _last_checkpoint(output_dir):
    try:
        with open(os.path.join(output_dir, "last_checkpoint")) as f:
            return f.read().strip()
    except OSError:
        return ""


def _weights(path):
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path, shapes_root):
    """12 iterations, a checkpoint every 2; the second run is SIGKILLed once model_0000005.pth
    (after iteration 6) is the last checkpoint, then resumed: final weights are bitwise equal."""
    cfg = shapes_distill_cfg(tmp_path, max_iter=12, period=2)
    config_file = write_cfg(cfg, tmp_path / "cfg.yaml")
    env = subprocess_env(shapes_root)
    full, killed = tmp_path / "full", tmp_path / "killed"
    with open(tmp_path / "full.log", "w") as log:
        subprocess.run(_train_cmd(config_file, full), env=env, stdout=log, stderr=log, check=True)

    log = open(tmp_path / "killed.log", "w")
    proc = subprocess.Popen(_train_cmd(config_file, killed), env=env, stdout=log, stderr=log)
    deadline = time.time() + KILL_TIMEOUT_S
    while _last_checkpoint(killed) != "model_0000005.pth":
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline, "no checkpoint model_0000005.pth in time"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    log.close()
    assert not (killed / "model_final.pth").exists()

    with open(tmp_path / "resumed.log", "w") as log:
        subprocess.run(
            _train_cmd(config_file, killed, resume=True),
            env=env,
            stdout=log,
            stderr=log,
            check=True,
        )
    text = (tmp_path / "resumed.log").read_text()
    start = int(text.split("Starting training from iteration ")[1].split()[0])
    assert 6 <= start < 12, start  # resumed from model_0000005.pth or a later checkpoint

    a, b = _weights(full / "model_final.pth"), _weights(killed / "model_final.pth")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _checkpointer(tmp_path):
    model = torch.nn.Linear(64, 64)
    return model, AtomicCheckpointer(model, str(tmp_path))


def _half_save_then(fail):
    real_save = torch.save

    def save(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        f.seek(f.tell() // 2)
        f.truncate()
        f.flush()
        fail()

    return save


def _assert_last_is_complete(tmp_path, model, name):
    assert _last_checkpoint(tmp_path) == name
    loaded = _weights(tmp_path / name)
    for k, v in model.state_dict().items():
        assert torch.equal(loaded[k], v), k
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_exception_during_save_keeps_last_checkpoint(tmp_path, monkeypatch):
    model, checkpointer = _checkpointer(tmp_path)
    checkpointer.save("model_0000001", iteration=1)
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.weight.add_(1.0)

    def crash():
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(torch, "save", _half_save_then(crash))
    with pytest.raises(OSError, match="simulated"):
        checkpointer.save("model_0000003", iteration=3)
    assert not (tmp_path / "model_0000003.pth").exists()
    model.load_state_dict(saved)
    _assert_last_is_complete(tmp_path, model, "model_0000001.pth")


def _save_and_die(tmp_path):
    model, checkpointer = _checkpointer(tmp_path)
    torch.save = _half_save_then(lambda: os._exit(137))  # dies like a SIGKILL: no cleanup
    checkpointer.save("model_0000003", iteration=3)


def test_kill_during_save_keeps_last_checkpoint(tmp_path):
    model, checkpointer = _checkpointer(tmp_path)
    checkpointer.save("model_0000001", iteration=1)
    child = multiprocessing.get_context("fork").Process(target=_save_and_die, args=(tmp_path,))
    child.start()
    child.join(60)
    assert child.exitcode == 137
    assert not (tmp_path / "model_0000003.pth").exists()
    leftovers = [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    assert len(leftovers) == 1 and leftovers[0].startswith(".model_0000003.pth.")
    os.remove(tmp_path / leftovers[0])
    _assert_last_is_complete(tmp_path, model, "model_0000001.pth")
    assert AtomicCheckpointer(model, str(tmp_path)).resume_or_load("", resume=True) == {
        "iteration": 1
    }


def test_checkpoint_with_non_finite_weights_is_refused(tmp_path):
    model, checkpointer = _checkpointer(tmp_path)
    checkpointer.save("model_0000001")
    good = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.bias[3] = float("nan")
    with pytest.raises(FloatingPointError, match=r"model_0000003\.pth.*bias"):
        checkpointer.save("model_0000003")
    assert not (tmp_path / "model_0000003.pth").exists()
    model.load_state_dict(good)
    _assert_last_is_complete(tmp_path, model, "model_0000001.pth")
