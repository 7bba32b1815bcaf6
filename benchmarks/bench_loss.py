"""Cost of the clusterability loss in a training step.

A training step of the course's MNIST CNN (batch 128, CPU) with and without the clusterability
loss, interleaved so that both see the same machine state; the median of the per-pair time
ratios is reported. The loss is one pass over the clustered weights, while the step makes dozens
of passes over activations, so the ratio should stay within a few percent.

Run: ``python benchmarks/bench_loss.py`` (``make bench``). Numbers go to RESULTS.md.
"""

from __future__ import annotations

import statistics
import time

import torch
from _timing import interleave
from torch import nn

import modlib
from modlib.models import MnistCNN

BATCH, PAIRS, WARMUP, LAM = 128, 60, 5, 20.0


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


if __name__ == "__main__":
    main()
