"""Cost of the clusterability loss in a training step, and against one pass over its weights.

A training step of the course's MNIST CNN (batch 128, CPU) with and without the clusterability
loss, interleaved so that both see the same machine state; the median of the per-pair time
ratios is reported. The loss is about one pass over the clustered weights, while the step makes
dozens of passes over activations, so the ratio should stay within a few percent.

Then one table: the loss's forward + backward on a single layer (3072×768 and 128×3136 Linear,
a 256×256×3×3 Conv2d; k = 4), divided by **one pass**: ``(W * W).sum()`` on the same weight
tensor under ``torch.no_grad()``, in its own dtype (float32), which reads W, writes W², reads
it back. Medians of interleaved repeats, on 1 and on 2 threads, for:

- autograd of the plain formula (``plain_loss``: W², the bool mask, two sums), the reference;
- the loss on its training partition, contiguous equal blocks aligned along the model (the
  fast path of ``modlib.core.loss._InsideShare``). Target ≤ 4×;
- the loss on random labels: the general path (one-hot factors and thin matmuls) that any
  other partition takes, e.g. a spectral one for fine-tuning; its cost does not depend on
  the labels.

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
SHAPES = [(3072, 768), (128, 3136), (256, 256, 3, 3)]
K, REPEATS, THREADS = 4, 101, (1, 2)


def make_step(model: nn.Module, loss_fn: modlib.ClusterabilityLoss | None):
    """A training step of ``model`` (AdamW), with ``LAM * loss_fn()`` added when given."""
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
    """The MNIST step's overhead, then the table of per-layer ratios."""
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
    """The reference: 1 − clusterability of one layer, through autograd of the formula."""
    W2 = W.square() if W.ndim == 2 else W.square().sum(dim=(2, 3))
    return 1 - (W2 * mask).sum() / W2.sum()


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _layer_model(shape: tuple[int, ...]) -> nn.Module:
    """A three-layer model whose middle layer ("1") has the weight ``shape``."""
    if len(shape) == 2:
        n_out, n_in = shape
        return nn.Sequential(nn.Linear(8, n_in), nn.Linear(n_in, n_out), nn.Linear(n_out, 8))
    n_out, n_in, kh, _ = shape
    return nn.Sequential(nn.Conv2d(3, n_in, kh), nn.Conv2d(n_in, n_out, kh),
                         nn.Conv2d(n_out, 8, kh))


def layer_ratios(shape: tuple[int, ...]) -> tuple[float, float, float, float]:
    """(pass ms, plain ratio, loss ratio, loss ratio on random labels) for one layer.

    Each time is the median of interleaved repeats (the order reversed every other round).
    """
    torch.manual_seed(0)
    model = _layer_model(shape)
    W = model[1].weight
    loss_fn = modlib.ClusterabilityLoss(model, K, layers=["1"])
    gen = torch.Generator().manual_seed(1)
    rand = modlib.Partition(torch.randint(K, (shape[0],), generator=gen),
                            torch.randint(K, (shape[1],), generator=gen), K)
    general_fn = modlib.ClusterabilityLoss(model, K, partitions={"1": rand})
    mask = loss_fn.partitions["1"].mask()

    def one_pass() -> None:
        with torch.no_grad():
            (W * W).sum()

    def plain() -> None:
        W.grad = None
        plain_loss(W, mask).backward()

    def closed_form() -> None:
        W.grad = None
        loss_fn().backward()

    def general() -> None:
        W.grad = None
        general_fn().backward()

    fns = [one_pass, plain, closed_form, general]
    times: list[list[float]] = [[] for _ in fns]
    for r in range(REPEATS + 3):
        for i in range(len(fns)) if r % 2 else reversed(range(len(fns))):
            t = _timed(fns[i])
            if r >= 3:  # the first rounds warm up
                times[i].append(t)
    t_pass, t_plain, t_loss, t_general = (statistics.median(t) for t in times)
    return t_pass * 1e3, t_plain / t_pass, t_loss / t_pass, t_general / t_pass


def report_layer_ratios() -> None:
    """Print the table: every layer shape on 1 and on 2 threads."""
    threads = torch.get_num_threads()
    print(f"\nloss forward + backward / one pass, k={K}, median of {REPEATS} interleaved repeats;"
          f" one pass = (W * W).sum() under no_grad, float32 (target ≤ 4× on blocks)")
    print("| layer | threads | one pass | plain autograd | loss, blocks | loss, random labels |")
    print("|---|---|---|---|---|---|")
    try:
        for shape in SHAPES:
            name = "×".join(map(str, shape)) + (" Linear" if len(shape) == 2 else " Conv2d")
            for n in THREADS:
                torch.set_num_threads(n)
                ms, plain, loss, general = layer_ratios(shape)
                print(f"| {name} | {n} | {ms:.2f} ms | {plain:.1f}× | {loss:.2f}× | "
                      f"{general:.2f}× |", flush=True)
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    main()
