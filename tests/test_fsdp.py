"""The clusterability loss under sharded training: FSDP2 ``fully_shard`` (book: scaling.md).

Under FSDP2 a weight is a ``DTensor`` split by rows over the processes, and the loss sums each
process's rows and adds the sums up with one all-reduce. The fast tests check that arithmetic in
one process: row blocks of a matrix, summed, give the unsharded value and gradient. The slow
tests start two CPU processes over gloo (``tests/fsdp_worker.py``) and compare sharded models
with their unsharded copies; the last one pins what ``accelerate launch`` does with an FSDP
config on a CPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from modlib import ClusterabilityLoss, layer_matrix
from modlib.core.graph import is_weight_layer
from modlib.core.loss import _inside_share, _one_hot, _ShardSums
from tests.test_accelerate import _accelerate_cli, _free_port

ROOT = Path(__file__).resolve().parents[1]

# (W shape, column labels given or k contiguous blocks (None)): the fast and the general path
_CASES = {
    "linear/blocks": ((7, 10), False),
    "linear/labels": ((7, 10), True),
    "conv/blocks": ((5, 4, 3, 3), False),
    "conv/labels": ((5, 4, 3, 3), True),
}
_SPLITS = [[0, 4, 7], [0, 0, 3, 5], [0, 1, 2, 5]]  # uneven, an empty block, more than two


def _layer(case: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """A float64 weight W, its row labels' one-hot A and, for a labelled case, B (k = 2)."""
    shape, labelled = _CASES[case]
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(shape, generator=g, dtype=torch.float64)
    rows = torch.randint(0, 2, (shape[0],), generator=g)
    cols = torch.randint(0, 2, (shape[1],), generator=g)
    A = _one_hot(rows, 2, torch.float64)
    return W, A, _one_hot(cols, 2, torch.float64) if labelled else None


@pytest.mark.parametrize("bounds", _SPLITS, ids=str)
@pytest.mark.parametrize("case", list(_CASES))
def test_row_blocks_add_up_to_the_unsharded_value_and_gradient(case, bounds):
    """Summing (inside, total) over blocks of rows, then dividing, is the unsharded C; each
    block's gradient is its rows of the unsharded gradient (what every process gets)."""
    W, A, B = _layer(case)
    bounds = [min(b, len(W)) for b in bounds[:-1]] + [len(W)]  # the last block ends at the end
    whole = W.clone().requires_grad_()
    expected = _inside_share(whole, A, B)
    expected.backward()
    parts = W.clone().requires_grad_()
    sums = sum(_ShardSums.apply(parts[lo:hi], A[lo:hi], B)
               for lo, hi in zip(bounds, bounds[1:], strict=False))
    value = ClusterabilityLoss._ratio(*sums)
    value.backward()
    torch.testing.assert_close(value, expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(parts.grad, whole.grad, rtol=0, atol=1e-12)


@pytest.mark.parametrize("case", list(_CASES))
def test_shard_sums_are_those_of_the_formula(case):
    """(inside, total) = (Σ W²·M, Σ W²), and the closed-form backward is autograd's for any
    pair of incoming gradients."""
    W, A, B = _layer(case, seed=1)
    mine = W.clone().requires_grad_()
    sums = _ShardSums.apply(mine, A, B)
    ref = W.clone().requires_grad_()
    cols = B if B is not None else _one_hot(torch.arange(W.shape[1]) // (W.shape[1] // 2), 2,
                                            torch.float64)
    M = A @ cols.T  # (d0, d1)
    W2 = ref.square() if ref.dim() == 2 else ref.square().sum(dim=(2, 3))
    expected = torch.stack([(W2 * M).sum(), W2.sum()])
    torch.testing.assert_close(sums, expected, rtol=1e-12, atol=0)
    g = torch.tensor([0.7, -1.3], dtype=torch.float64)
    (sums * g).sum().backward()
    (expected * g).sum().backward()
    torch.testing.assert_close(mine.grad, ref.grad, rtol=0, atol=1e-12)


def test_shard_sums_follow_the_weight_dtype():
    """float32 weights: sums in float32 and a float32 gradient; a block with no rows sums to
    0 and gets an empty gradient."""
    W = torch.randn(4, 6, requires_grad=True)
    A = _one_hot(torch.tensor([0, 0, 1, 1]), 2, torch.float32)
    sums = _ShardSums.apply(W[:0], A[:0], None) + _ShardSums.apply(W, A, None)
    assert sums.dtype == torch.float32
    sums.sum().backward()
    assert W.grad.dtype == torch.float32 and W.grad.shape == W.shape


def test_an_all_zero_layer_counts_as_zero_with_zero_gradient():
    """As the unsharded loss: the summed total 0 gives C = 0 and gradient 0, not NaN."""
    W = torch.zeros(4, 6, requires_grad=True)
    A = _one_hot(torch.tensor([0, 0, 1, 1]), 2, torch.float32)
    value = ClusterabilityLoss._ratio(*_ShardSums.apply(W, A, None))
    value.backward()
    assert value.detach().item() == 0.0 and not W.grad.any()


class Conv1D(nn.Module):
    """What modlib matches of Hugging Face's GPT-2 Conv1D: the name, ``nf``, a (n_in, n_out)
    weight (a stand-in, so that this fast test does not import transformers)."""

    def __init__(self, nf: int, nx: int) -> None:
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.randn(nx, nf))


def test_a_sharded_conv1d_is_still_a_conv1d():
    """``fully_shard`` turns a Conv1D into a new class "FSDPConv1D" (a subclass): still read as
    a Conv1D, transposed (found when the loss was built after sharding a GPT-2-like model)."""
    sharded = type("FSDPConv1D", (Conv1D,), {})(8, 7)
    assert is_weight_layer(sharded)
    assert layer_matrix(sharded).shape == (8, 7)  # (n_out, n_in)


# --- two processes ------------------------------------------------------------------------


def _distributed() -> None:
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("this torch has no torch.distributed with gloo")


@pytest.fixture(scope="module")
def sharded(tmp_path_factory) -> dict:
    """The report of ``tests/fsdp_worker.py`` run by torchrun in two CPU processes."""
    _distributed()
    tmp = tmp_path_factory.mktemp("fsdp")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HOME": str(tmp / "hf"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(ROOT / "tests" / "fsdp_worker.py")]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env,
                              cwd=tmp)
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"torchrun did not finish in 180 s: {err.stdout} {err.stderr}")
    out = done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("REPORT ")]
    assert done.returncode == 0 and len(lines) == 1, out
    report = json.loads(lines[0][len("REPORT "):])
    assert Path(report["modlib"]).resolve().parent == ROOT / "modlib"  # this checkout's modlib
    assert report["world_size"] == 2
    return report


_CONFIGS = [f"{model}/{wrap}" for model in ("mlp", "gpt2_like", "convnet")
            for wrap in ("layers", "layers_kept", "root")]
_CONFIGS += ["mlp/layers/scattered", "mlp/layers/hsdp"]


@pytest.mark.slow
@pytest.mark.parametrize("config", _CONFIGS)
def test_the_sharded_loss_is_the_unsharded_one(sharded, config):
    """Value, per-layer clusterability, the loss's gradient, the gradient of task + λ·loss
    and the parameters after two SGD steps: those of the unsharded model, in float64.

    ``model/layers``: every weight layer sharded on its own (the loss reads row-sharded
    DTensors, before and after forward); ``layers_kept`` and ``root``: FSDP keeps the weights
    unsharded between forward and backward, so there the loss reads whole matrices and FSDP
    averages its (identical) gradient; ``scattered``: :class:`ScatteredMaskLoss`; ``hsdp``: a
    (2 replicas × 1 shard) mesh, placements (Replicate(), Shard(0)).
    """
    if config not in sharded and config.startswith("gpt2_like"):
        pytest.skip("transformers (the [llm] extra) is not installed: no GPT-2 Conv1D")
    r = sharded[config]
    for key in ("value", "clusterability", "grad", "train_grad", "trained"):
        assert r[key] <= 1e-12, (key, r)
    assert r["grad_types"] == ["DTensor"]  # the gradient is the parameters' sharded .grad
    assert r["grad_placements"] == r["placements"]


@pytest.mark.slow
def test_the_shards_are_uneven_and_both_paths_are_taken(sharded):
    """Rank 0 holds ⌈n/2⌉ rows: 4 of 7, 3 of 5; a Conv1D's 7 input neurons split 4 + 3. After
    forward the loss reads DTensors when FSDP reshards, whole matrices when it does not."""
    assert sharded["mlp/layers"]["rows"] == [[5, 10], [4, 7], [3, 5]]
    assert sharded["convnet/layers"]["rows"] == [[3, 5], [3, 6], [4, 7]]
    if "gpt2_like/layers" in sharded:
        assert sharded["gpt2_like/layers"]["rows"][1] == [4, 7]
    assert sharded["mlp/layers"]["weights_after_forward"] == ["DTensor"]
    assert sharded["mlp/root"]["weights_after_forward"] == ["Parameter"]
    assert sharded["mlp/layers_kept"]["weights_after_forward"] == ["Parameter"]


@pytest.mark.slow
def test_without_the_all_reduce_each_process_gets_another_value(sharded):
    """The comparison can fail: a process that sums only its own rows is off by about 0.03."""
    assert sharded["local_value_gap"] > 1e-3


@pytest.mark.slow
def test_torch_differentiable_all_reduce_would_double_the_gradient(sharded):
    """Why the loss has its own all-reduce: ``torch.distributed.nn.functional.all_reduce``
    also sums the gradient over the processes in backward, so with every process computing
    the same loss each shard's gradient comes out world-size (2) times too large."""
    assert sharded["torch_all_reduce_grad_ratio"] == [2.0]


@pytest.mark.slow
def test_column_shards_are_refused(sharded):
    msg = sharded["column_shards"]
    assert msg.startswith("Layer '0' has a DTensor weight placed as (Shard(dim=1),)"), msg
    assert "sharded by their first dim (Shard(0)" in msg


# --- accelerate launch with an FSDP config ------------------------------------------------

_FSDP_CONFIG = """\
compute_environment: LOCAL_MACHINE
distributed_type: FSDP
num_machines: 1
num_processes: 2
mixed_precision: 'no'
fsdp_config:
  fsdp_version: 2
  fsdp_auto_wrap_policy: NO_WRAP
  fsdp_reshard_after_forward: true
  fsdp_state_dict_type: SHARDED_STATE_DICT
  fsdp_cpu_ram_efficient_loading: false
"""

_ACCELERATE_SCRIPT = textwrap.dedent('''
    from pathlib import Path

    import torch
    from accelerate import Accelerator
    from torch import nn

    import modlib

    accelerator = Accelerator(cpu=True)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 10), nn.ReLU(), nn.Linear(10, 7), nn.ReLU(),
                          nn.Linear(7, 5))
    loss = modlib.ClusterabilityLoss(model, k=2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    wrapped, opt = accelerator.prepare(model, opt)
    # a file per rank: two processes printing at once can interleave their lines
    Path(f"rank{accelerator.process_index}.txt").write_text(
        f"{accelerator.distributed_type} {type(wrapped).__name__} "
        f"{type(model[2].weight).__name__} {float(loss().detach()):.6f}")
''')


@pytest.mark.slow
def test_accelerate_launch_with_an_fsdp_config_runs_ddp_on_a_cpu(tmp_path):
    """Finding (accelerate 1.15): ``accelerate launch`` with an FSDP (version 2) config starts
    two CPU processes, but ``Accelerator(cpu=True)`` makes them ``MULTI_CPU`` and ``prepare``
    wraps the model in DistributedDataParallel: accelerate turns FSDP on only for GPU-like
    devices (CUDA, XPU, NPU, ...), and without ``cpu=True`` and a GPU each process trains
    alone (``DistributedType.NO``). So the sharded loss is tested through torch's
    ``fully_shard`` above, and the loss here sees whole weights. When this test fails,
    accelerate has learnt FSDP on CPUs: make it train with the sharded loss instead.
    """
    pytest.importorskip("accelerate", reason="accelerate (the [llm] extra) is not installed")
    cli = _accelerate_cli()
    if cli is None:
        pytest.skip("the accelerate command-line tool is not on the PATH")
    (tmp_path / "fsdp.yaml").write_text(_FSDP_CONFIG)
    (tmp_path / "train.py").write_text(_ACCELERATE_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HOME": str(tmp_path / "hf"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [cli, "launch", "--config_file", str(tmp_path / "fsdp.yaml"), "--main_process_port",
           str(_free_port()), str(tmp_path / "train.py")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    ranks = [(tmp_path / f"rank{i}.txt").read_text().split() for i in (0, 1)]
    for words in ranks:
        assert words[:3] == ["DistributedType.MULTI_CPU", "DistributedDataParallel",
                             "Parameter"], (words, out)
    assert ranks[0][3] == ranks[1][3], out  # the same loss on both ranks
