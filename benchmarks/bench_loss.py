"""Cost of the clusterability loss in a training step.

A training step of the course's MNIST CNN (batch 128, CPU) with and without the clusterability
loss, interleaved so that both see the same machine state; the median of the per-pair time
ratios is reported. The loss is one pass over the clustered weights, while the step makes dozens
of passes over activations, so the ratio should stay within a few percent.

Then, on one thread, the loss's forward + backward on a single 3072×768 and 128×3136 Linear,
divided by one no-grad pass over the same weights (``(W*W).sum()``): median of interleaved
repeats, for autograd of the plain formula (the reference kept below) and for the loss itself,
whose backward is the closed form 2 W (M − C) / sum(W²). Target ≤ 4×.

Run: ``python benchmarks/bench_loss.py`` (``make bench``). Numbers go to RESULTS.md.
"""

from __future__ import annotations

import statistics
import time

import torch
from _timing import interleave
from torch import nn

import modlib
from modlib.training.models import MnistCNN

BATCH, PAIRS, WARMUP, LAM = 128, 60, 5, 20.0
SHAPES, K, REPEATS = [(3072, 768), (128, 3136)], 4, 41


def make_step(model: nn.Module, loss_fn: modlib.ClusterabilityLoss | None):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    X = torch.randn(BATCH, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    y = torch.randint(10, (BATCH,), generator=torch.Generator().manual_seed(1))

    def step() -> float:
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(X), y)
        if loss_fn is not None:
            loss = loss + LAM * loss_fn()
        loss.backward()
        opt.step()
        return time.perf_counter() - t

    return step


def main() -> None:
    torch.manual_seed(0)
    plain_model, modular_model = MnistCNN(), MnistCNN()
    loss_fn = modlib.ClusterabilityLoss(modular_model, k=4)
    plain, modular = make_step(plain_model, None), make_step(modular_model, loss_fn)
    t_plain, t_mod = interleave(plain, modular, PAIRS, WARMUP)
    ratios = [b / a for a, b in zip(t_plain, t_mod, strict=True)]
    ratio = statistics.median(ratios)
    print(f"MNIST CNN, batch {BATCH}, {torch.get_num_threads()} threads, layers "
          f"{loss_fn.layer_names}, {PAIRS} interleaved pairs")
    print(f"median step without loss {statistics.median(t_plain) * 1e3:.1f} ms, with loss "
          f"{statistics.median(t_mod) * 1e3:.1f} ms, median ratio {ratio:.3f} (target ≤ 1.03)")
    t = time.perf_counter()
    for _ in range(200):
        loss_fn().backward()
    print(f"the loss alone (forward + backward): {(time.perf_counter() - t) / 200 * 1e3:.2f} ms")
    report_layer_ratios()


def plain_loss(W: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The reference: 1 − clusterability of one Linear, through autograd of the formula."""
    W2 = W.square()
    return 1 - (W2 * mask).sum() / W2.sum()


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def layer_ratios(n_out: int, n_in: int) -> tuple[float, float, float]:
    """(pass ms, plain ratio, loss ratio) for one Linear, each median of interleaved repeats."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, n_in), nn.Linear(n_in, n_out), nn.Linear(n_out, 8))
    loss_fn = modlib.ClusterabilityLoss(model, K, layers=["1"])
    W, mask = model[1].weight, loss_fn.partitions["1"].mask()

    def one_pass() -> None:
        with torch.no_grad():
            (W * W).sum()

    def plain() -> None:
        W.grad = None
        plain_loss(W, mask).backward()

    def closed_form() -> None:
        W.grad = None
        loss_fn().backward()

    fns = [one_pass, plain, closed_form]
    times: list[list[float]] = [[] for _ in fns]
    for r in range(REPEATS + 3):
        for i in range(len(fns)) if r % 2 else reversed(range(len(fns))):
            t = _timed(fns[i])
            if r >= 3:  # the first rounds warm up
                times[i].append(t)
    t_pass, t_plain, t_loss = (statistics.median(t) for t in times)
    return t_pass * 1e3, t_plain / t_pass, t_loss / t_pass


def report_layer_ratios() -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        print(f"loss forward + backward / one no-grad pass (W*W).sum(), one Linear, k={K}, "
              f"1 thread, median of {REPEATS} interleaved repeats (target ≤ 4×):")
        for n_out, n_in in SHAPES:
            ms, before, after = layer_ratios(n_out, n_in)
            print(f"  {n_out}×{n_in}: pass {ms:.2f} ms; plain autograd {before:.1f}×, "
                  f"closed form {after:.1f}×")
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    main()
