"""The clusterability loss under FSDP2 ``fully_shard``, run by ``tests/test_fsdp.py``.

Started by ``python -m torch.distributed.run --standalone --nproc_per_node 2`` (two CPU processes
over gloo). Every check compares a sharded model with an unsharded copy in the same process, in
float64, and rank 0 prints one line ``REPORT {json}`` with the largest differences found. Nothing
runs on import (pytest imports every module of ``tests/`` for its doctests).
"""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Callable

import torch
import torch.distributed as dist
from torch import nn

K = 2  # clusters per layer
LAM = 3.0  # weight of the loss in the training steps


def mlp() -> nn.Module:
    """Output rows 10, 7 and 5: even shards (5 + 5) and uneven ones (4 + 3, 3 + 2)."""
    return nn.Sequential(nn.Linear(12, 10), nn.ReLU(), nn.Linear(10, 7), nn.ReLU(),
                         nn.Linear(7, 5))


def gpt2_like() -> nn.Module:
    """A GPT-2 ``Conv1D`` stored (n_in=7, n_out=8): its dim-0 shards are input neurons."""
    from transformers.pytorch_utils import Conv1D

    return nn.Sequential(nn.Linear(12, 7), nn.ReLU(), Conv1D(8, 7), nn.ReLU(), nn.Linear(8, 5))


def convnet() -> nn.Module:
    """Conv2d weights (5, 3, 3, 3) and (6, 5, 3, 3): uneven output channels over 2 processes."""
    return nn.Sequential(nn.Conv2d(3, 5, 3), nn.ReLU(), nn.Conv2d(5, 6, 3), nn.Flatten(),
                         nn.Linear(24, 7))


MODELS: dict[str, Callable[[], nn.Module]] = {"mlp": mlp, "gpt2_like": gpt2_like,
                                               "convnet": convnet}


def _batch(model_name: str) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)  # the same batch on every rank
    shape = (4, 3, 6, 6) if model_name == "convnet" else (4, 12)
    return torch.randn(shape, generator=g, dtype=torch.float64)


def _partitions(model: nn.Module) -> dict:
    """Scattered labels for the second weight layer: the general (non-block) path of the loss."""
    import modlib

    name, layer = list(modlib.weight_layers(model).items())[1]
    n_out, n_in = modlib.layer_matrix(layer).shape
    g = torch.Generator().manual_seed(2)
    rows = torch.cat([torch.arange(K), torch.randint(0, K, (n_out - K,), generator=g)])
    cols = torch.cat([torch.arange(K), torch.randint(0, K, (n_in - K,), generator=g)])
    return {name: modlib.Partition(rows, cols, K)}


def _build(model_name: str, wrap: str, loss_type: type, mesh=None):
    """An unsharded model and its loss, and a sharded copy and its loss.

    ``wrap``: "layers" shards each weight layer and then the root (weights are row-sharded
    DTensors after forward); "layers_kept" the same with ``reshard_after_forward=False`` and
    "root" the root alone (FSDP then keeps the weights unsharded from forward to backward).
    The loss is built before sharding for "layers", after it otherwise.
    """
    from torch.distributed.fsdp import fully_shard

    import modlib

    torch.manual_seed(0)
    ref = MODELS[model_name]().double()
    model = copy.deepcopy(ref)
    layers = list(modlib.weight_layers(ref))
    kw = {"layers": layers, "partitions": _partitions(ref)}
    ref_loss = loss_type(ref, K, **kw)
    loss = loss_type(model, K, **kw) if wrap == "layers" else None
    if wrap != "root":
        for name in layers:
            fully_shard(model.get_submodule(name), mesh=mesh,
                        reshard_after_forward=wrap == "layers")
    fully_shard(model, mesh=mesh)
    return ref, ref_loss, model, loss or loss_type(model, K, **kw)


def _grads(model: nn.Module) -> dict:
    from torch.distributed.tensor import DTensor

    return {n: None if p.grad is None else
            p.grad.full_tensor() if isinstance(p.grad, DTensor) else p.grad
            for n, p in model.named_parameters()}


def _max_diff(a: dict, b: dict) -> float:
    if any((a[n] is None) != (b[n] is None) for n in a):
        return float("inf")  # a gradient on one side only
    return max((float((a[n] - b[n]).abs().max()) for n in a if a[n] is not None), default=0.0)


def compare(model_name: str, wrap: str, loss_type: type, mesh=None) -> dict:
    """The sharded loss against the unsharded one: value, gradients, two training steps."""
    from torch.distributed.tensor import DTensor

    ref, ref_loss, model, loss = _build(model_name, wrap, loss_type, mesh)
    weights = [m.weight for m in loss.layers.values()]
    out = {"placements": sorted({str(w.placements) for w in weights}),
           "rows": [[w.to_local().shape[0], w.shape[0]] for w in weights]}
    # 1. the loss alone, before any forward: every weight is a row-sharded DTensor
    value, ref_value = loss(), ref_loss()
    value.backward()
    ref_value.backward()
    out["value"] = abs(value.detach().item() - ref_value.detach().item())
    out["grad"] = _max_diff(_grads(model), _grads(ref))
    out["grad_types"] = sorted({type(p.grad).__name__ for p in model.parameters()
                                if p.grad is not None})
    out["grad_placements"] = sorted({str(p.grad.placements) for p in model.parameters()
                                     if isinstance(p.grad, DTensor)})
    mine, theirs = loss.clusterability(), ref_loss.clusterability()
    out["clusterability"] = max(abs(mine[n] - theirs[n]) for n in theirs)
    # 2. two SGD steps of task + lam * loss, through FSDP's forward, backward and reduction
    x = _batch(model_name)
    opts = [torch.optim.SGD(m.parameters(), lr=0.1) for m in (model, ref)]
    for step in range(2):
        for m, lf, opt in zip((model, ref), (loss, ref_loss), opts, strict=True):
            opt.zero_grad()
            y = m(x)
            if m is model:  # what the loss reads once forward has run
                out.setdefault("weights_after_forward",
                               sorted({type(w.weight).__name__ for w in lf.layers.values()}))
            (y.square().mean() + LAM * lf()).backward()
        if step == 0:
            out["train_grad"] = _max_diff(_grads(model), _grads(ref))
        for opt in opts:
            opt.step()
    with torch.no_grad():
        full = {n: p.full_tensor() if isinstance(p, DTensor) else p
                for n, p in model.named_parameters()}
        out["trained"] = max(float((full[n] - p).abs().max()) for n, p in ref.named_parameters())
    return out


def without_the_reduction() -> dict:
    """What the all-reduce is for: each process alone, and torch's differentiable all-reduce."""
    from torch.distributed.nn.functional import all_reduce

    from modlib import ClusterabilityLoss
    from modlib.core import loss as loss_module

    _, _, model, loss = _build("mlp", "layers", ClusterabilityLoss)
    exact = loss().detach().item()
    reduce = loss_module._SumOverShards.apply
    try:
        loss_module._SumOverShards.apply = lambda x, groups: x  # each process's rows only
        local = loss().detach().item()
        # torch's all_reduce also sums the gradient over the processes in backward
        loss_module._SumOverShards.apply = lambda x, groups: all_reduce(x)
        with warnings.catch_warnings():  # it is deprecated
            warnings.simplefilter("ignore", FutureWarning)
            loss().backward()
        theirs = _grads(model)
    finally:
        loss_module._SumOverShards.apply = reduce
    model.zero_grad(set_to_none=True)
    loss().backward()
    ours = _grads(model)
    return {"local_value_gap": abs(local - exact),
            "torch_all_reduce_grad_ratio": sorted({round(float(theirs[n].norm() / g.norm()), 9)
                                                   for n, g in ours.items() if g is not None})}


def column_shards() -> str:
    """A weight sharded by columns (``shard_placement_fn``): the loss's error message."""
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import Shard

    from modlib import ClusterabilityLoss

    model = nn.Sequential(nn.Linear(12, 10), nn.ReLU(), nn.Linear(10, 8)).double()  # even cols
    loss = ClusterabilityLoss(model, K, layers=["0", "2"])
    fully_shard(model, shard_placement_fn=lambda p: Shard(p.ndim - 1))
    try:
        loss()
    except ValueError as err:
        return str(err)
    return "no error"


def main() -> None:
    from torch.distributed.device_mesh import init_device_mesh

    import modlib

    dist.init_process_group("gloo")
    report: dict = {"modlib": modlib.__file__, "world_size": dist.get_world_size()}
    try:
        import transformers  # noqa: F401
        names = list(MODELS)
    except ImportError:  # the [llm] extra is missing: no GPT-2 Conv1D
        names = [n for n in MODELS if n != "gpt2_like"]
    for name in names:
        for wrap in ("layers", "layers_kept", "root"):
            report[f"{name}/{wrap}"] = compare(name, wrap, modlib.ClusterabilityLoss)
    report["mlp/layers/scattered"] = compare("mlp", "layers", modlib.loss.ScatteredMaskLoss)
    hsdp = init_device_mesh("cpu", (2, 1), mesh_dim_names=("replicate", "shard"))
    report["mlp/layers/hsdp"] = compare("mlp", "layers", modlib.ClusterabilityLoss, hsdp)
    report.update(without_the_reduction())
    report["column_shards"] = column_shards()
    if dist.get_rank() == 0:
        print("REPORT " + json.dumps(report), flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
