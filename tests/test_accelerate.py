"""The multi-process path: ``accelerate launch`` with two CPU processes and the clusterability loss.

DESIGN.md ("Scaling out") scales training with an existing engine. This test runs a tiny model
with :class:`modlib.ClusterabilityLoss` in two processes started by ``accelerate launch``
(``Accelerator(cpu=True)``: DDP over gloo) and checks that both ranks end with identical
parameters.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("accelerate", reason="accelerate (the [llm] extra) is not installed")

_SCRIPT = textwrap.dedent('''
    import hashlib

    import torch
    from accelerate import Accelerator
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    import modlib

    accelerator = Accelerator(cpu=True)
    torch.manual_seed(0)  # same initial weights on every rank
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                          nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
    # Built from the unwrapped model: DDP wraps the model, it does not copy its layers.
    loss = modlib.ClusterabilityLoss(model, k=2)
    before = [id(m.weight) for _, m in loss._layers]
    X, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
    loader = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=True)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model, opt, loader = accelerator.prepare(model, opt, loader)
    inner = accelerator.unwrap_model(model)
    names = dict(inner.named_modules())
    same = all(m is names[n] for n, m in loss._layers)
    same = same and before == [id(names[n].weight) for n, _ in loss._layers]
    print(f"rank {accelerator.process_index} ddp={type(model).__name__} same_layers={same}")
    lam = 5.0
    start = 1 - float(loss().detach())
    for _ in range(3):
        for xb, yb in loader:
            total = nn.functional.cross_entropy(model(xb), yb) + lam * loss()
            opt.zero_grad()
            accelerator.backward(total)
            opt.step()
    flat = torch.cat([p.detach().flatten() for p in inner.parameters()])
    digest = hashlib.sha256(flat.numpy().tobytes()).hexdigest()
    print(f"rank {accelerator.process_index} checksum {digest}", flush=True)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        print(f"clusterability {start:.4f} -> {1 - float(loss().detach()):.4f}", flush=True)
''')


def _accelerate_cli() -> str | None:
    """The ``accelerate`` command next to this Python, else on the PATH."""
    beside = Path(sys.executable).with_name("accelerate")
    return str(beside) if beside.exists() else shutil.which("accelerate")


def _free_port() -> int:
    """A free TCP port for the rendezvous, so that concurrent runs do not collide on 29500."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch_two(tmp_path: Path, target: list[str], timeout: int) -> str:
    """Run ``accelerate launch`` with two CPU processes on ``target`` (a script, or ``-m``
    and a module with its arguments); the combined output, after checking the exit status.

    Not "--cpu": with it, accelerate 1.15 takes its simple launcher and starts ONE process
    (several CPU processes need an mpirun hostfile). "--multi_gpu" starts them with torchrun;
    ``Accelerator(cpu=True)`` (which ``modlib.train.fit`` uses when there is no GPU) then runs
    DDP on the CPU over gloo.
    """
    cli = _accelerate_cli()
    if cli is None:
        pytest.skip("the accelerate command-line tool is not on the PATH")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_CONFIG_FILE": str(tmp_path / "none"),
           "HF_HOME": str(tmp_path / "hf"), "MODLIB_CACHE": str(tmp_path / "cache")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])
    cmd = [cli, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--main_process_port", str(_free_port()), "--mixed_precision", "no",
           "--dynamo_backend", "no", *target]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=tmp_path)
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"accelerate launch did not finish in {timeout} s: {err.stdout} {err.stderr}")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    return out


@pytest.mark.slow
def test_two_cpu_processes_train_with_the_clusterability_loss(tmp_path):
    """Two ranks train with ``task + lam * loss()`` and end with the same parameters.

    Finding: ``ClusterabilityLoss`` keeps references to the model's layer modules (a plain
    list). ``accelerator.prepare`` wraps the model in ``DistributedDataParallel``, whose
    ``.module`` *is* the original model, so a loss built from the unwrapped model before
    ``prepare`` still sees the very same ``nn.Linear`` modules and parameter tensors afterwards
    (checked by identity in the script). Its gradient flows into those parameters outside DDP's
    forward; DDP's all-reduce still averages the whole ``.grad`` of each parameter (task part
    and clusterability part) because the reducer hooks fire on every gradient accumulation, and
    the clusterability gradient is identical on every rank anyway. Both ranks end bit-identical.

    Finding 2: ``accelerate launch --cpu --num_processes 2`` (accelerate 1.15) silently starts a
    single process; two CPU processes on one machine need ``--multi_gpu`` (torchrun) with
    ``Accelerator(cpu=True)`` in the script, which is what this test launches.
    """
    script = tmp_path / "train_ddp.py"
    script.write_text(_SCRIPT)
    out = _launch_two(tmp_path, [str(script)], timeout=120)
    assert sorted(re.findall(r"rank (\d) ddp=DistributedDataParallel same_layers=True", out)) \
        == ["0", "1"], out
    checksums = dict(re.findall(r"rank (\d) checksum ([0-9a-f]{64})", out))
    assert set(checksums) == {"0", "1"}, out
    assert checksums["0"] == checksums["1"], out
    rises = re.findall(r"clusterability (\d\.\d+) -> (\d\.\d+)", out)
    assert len(rises) == 1, out  # printed by rank 0 only
    assert float(rises[0][1]) > float(rises[0][0]) + 0.1, out  # lam * loss() did its work


@pytest.mark.slow
def test_accelerate_launch_runs_the_command_line_unchanged(tmp_path):
    """``accelerate launch -m modlib reproduce llm`` trains in two processes (DDP over gloo on
    this CPU), and only rank 0 writes results.json and prints the summary."""
    out_dir = tmp_path / "out"
    out = _launch_two(tmp_path, ["-m", "modlib", "reproduce", "llm", "--profile", "ci", "--quiet",
                                 "--out", str(out_dir)], timeout=240)
    assert out.count("wrote ") == 1, out  # the summary comes from rank 0 only
    results = json.loads((out_dir / "results.json").read_text())
    assert results["processes"] == 2
    assert results["modular"]["clusterability"] > results["baseline"]["clusterability"]
    assert (out_dir / "curves.png").exists()
