"""GPU time and memory of every notebook in a profile: estimated from FLOPs, measured on a GPU.

The estimate (``--dry-run``; also all that runs without CUDA) lists each notebook's training
runs with their FLOPs and adds up, per notebook (an estimate, not a measurement)::

    seconds = Σ_runs steps × (FLOPs per step / achieved FLOP/s + ops per step × launch cost
                              + host time to build a batch)
            + evaluation passes × (FLOPs per pass / achieved fp32 FLOP/s + launch cost)
            + fixed seconds (Colab set-up, downloads, analysis that runs on the CPU)

Training FLOPs are 3 × the forward FLOPs (the backward pass costs two forwards): for the course's
own models the forward is counted by ``torch.utils.flop_counter``; for GPT-2 it is 2 × its
matrix parameters + the attention scores, per token (the "6 N" rule). The per-step op counts,
the launch cost per op and the host costs were measured at tiny sizes on a CPU, where the same
ops run with almost no arithmetic; a GPU pays about as much per op to launch its kernels. The
sum ignores the overlap of Python with GPU work, so it leans high. Peak memory: weights,
gradients and two AdamW moments (16 bytes a parameter) plus the activations kept for backward.

On a CUDA machine each experiment is timed with ``modlib.reproduce`` at two sizes of the profile
(e.g. 1 and 2 epochs); the difference gives the cost of one epoch or step, which is extrapolated
to the notebook's runs, and ``torch.cuda.max_memory_allocated`` gives the peak memory. A markdown
table puts the measured numbers beside the estimate. RESULTS.md ("GPU times") holds both.

Run: ``python benchmarks/bench_gpu.py [--profile gpu|paper] [--gpu t4|a100] [--dry-run]``.
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
import time
from dataclasses import dataclass, replace
from typing import get_args

import torch
from torch.utils.flop_counter import FlopCounterMode

import modlib
from modlib.training.models import MnistCNN, ModAddTransformer, PaperCifarCNN
from modlib.training.profiles import Profile, ProfileName

K = 4  # clusters per layer in every notebook
BUDGET_GB = 12.0  # the gpu profile's promise on a free Colab T4, with <= 60 minutes (5 seeds)
OP_S = 15e-6  # one eager PyTorch op on a GPU: Python, dispatch and kernel launch (a CPU: 9-14 µs)
SETUP_S = 60.0  # every notebook in Colab: installing modlib, importing torch and modlib
SPECTRAL_S = 0.1  # spectral co-clustering of one GPT-2 MLP matrix, 3072 × 768 (RESULTS.md)
# PyTorch ops of one optimiser step in fit() with the clusterability loss (counted on a CPU);
# modadd's count is one whole epoch: the step, the evaluation and the per-layer read-out
OPS = {"mnist": 271, "cifar": 199, "modadd": 666, "llm": 4045}
EVAL_OPS = {"mnist": 35, "cifar": 35, "llm": 501}  # ops of one evaluation batch
LOADER_S = {"mnist": 8.5e-6, "cifar": 13e-6, "llm": 8.5e-6}  # DataLoader host time per example
COLLATE_S = 20e-6  # the same for modadd's full batch when a DataLoader collates it per example
GPT2 = dict(layers=12, d=768, heads=12, vocab=50_257)  # GPT-2 small, 124 M parameters
WIKITEXT2_CHARS, CHARS_PER_TOKEN = (10_900_000, 1_140_000), 4.5  # train / validation; GPT-2 BPE


@dataclass(frozen=True)
class Gpu:
    """What the estimate assumes of a GPU."""

    name: str
    amp_tflops: float  # achieved TFLOP/s when training under autocast (fp16 / bf16)
    fp32_tflops: float  # achieved TFLOP/s in float32 (evaluation, analysis, fp32 runs)
    memory_gb: float  # what a notebook may use


GPUS = {
    "t4": Gpu("Colab T4, fp16 (peak 65 fp16 / 8.1 fp32 TFLOP/s)", 15.0, 5.0, BUDGET_GB),
    "a100": Gpu("A100 40 GB, bf16 (peak 312 bf16 / 19.5 fp32 TFLOP/s)", 70.0, 14.0, 40.0),
}


@dataclass(frozen=True)
class Workload:
    """One training run of an experiment at a profile's sizes, and its evaluation passes."""

    experiment: str  # as modlib.reproduce names it: mnist, cifar, modadd or llm
    label: str  # what it trains
    steps: int  # optimiser steps of one run (modadd: full-batch epochs)
    step_flops: float  # FLOPs of one step, forward and backward
    step_host_s: float  # launch and host seconds of one step: its ops, building its batch
    eval_flops: float  # FLOPs of one pass over the test or validation set
    eval_host_s: float  # launch and host seconds of one such pass
    evals: int  # passes in one run: each epoch, the final evaluation, the ablations
    amp: bool  # trained under autocast (else float32)
    memory: float  # peak bytes of one run


@dataclass(frozen=True)
class Notebook:
    """What one notebook runs on the GPU, and what it spends elsewhere."""

    name: str
    runs: list[tuple[Workload, int]]  # each workload and how many runs of it
    extra_evals: list[tuple[Workload, int]]  # passes of the analysis (ablations, token losses)
    fixed_s: float  # set-up, downloads and CPU-side analysis
    resident: float = 0.0  # bytes of models kept on the GPU besides the one training


@functools.lru_cache
def _counts(model_name: str, size: int) -> tuple[float, int, float]:
    """``(forward FLOPs, parameters, bytes kept for backward)`` of one example through one of
    the course's models (``size``: the MNIST CNN's width, or p)."""
    if model_name == "mnist":
        model, example = MnistCNN(width=size), torch.zeros(1, 1, 28, 28)
    elif model_name == "cifar":
        model, example = PaperCifarCNN(), torch.zeros(1, 3, 32, 32)
    else:
        model, example = ModAddTransformer(size), torch.tensor([[0, 1, size]])
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(example)
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        if t.untyped_storage().data_ptr() not in weights:  # activations, not the weights
            saved += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(example)
    params = sum(p.numel() for p in model.parameters())
    return float(counter.get_total_flops()), params, float(saved)


def _small(experiment: str, label: str, size: int, *, batch: int, steps: int, n_test: int,
           evals: int, amp: bool, full_batch: bool = False) -> Workload:
    """A workload of one of the course's own models, counted on one example."""
    fwd, params, saved = _counts(experiment, size)
    memory = 16 * params + batch * saved
    if full_batch:  # modadd: host time only if a DataLoader collates the batch example by example
        host, eval_host = 0.0, 0.0
    else:
        host = LOADER_S[experiment] * batch
        eval_host = math.ceil(n_test / batch) * EVAL_OPS[experiment] * OP_S \
            + LOADER_S[experiment] * n_test
    return Workload(experiment, label, steps, 3 * fwd * batch, host + OPS[experiment] * OP_S,
                    fwd * n_test, eval_host, evals, amp, memory)


def image_workload(prof: Profile, *, cifar: bool, pretrained: bool = False) -> Workload:
    """A run of the MNIST CNN or the authors' CIFAR CNN; ``pretrained``: the zoo's baseline,
    trained without the loss and evaluated once (else reproduce's runs: an evaluation each
    epoch, a final one and the OFF ablation of _interpret, (1 + 1) k + 1 passes)."""
    n_train = (prof.cifar_train if cifar else prof.mnist_train) or (50_000 if cifar else 60_000)
    n_test = (prof.cifar_test if cifar else prof.mnist_test) or 10_000
    epochs = prof.cifar_epochs if cifar else prof.mnist_epochs
    label = (f"{'CIFAR CNN' if cifar else f'MNIST CNN width {prof.width}'}, {epochs} epochs x "
             f"{n_train:,}")
    return _small("cifar" if cifar else "mnist", label, prof.width, batch=prof.batch_size,
                  steps=epochs * math.ceil(n_train / prof.batch_size), n_test=n_test,
                  evals=1 if pretrained else epochs + 1 + 2 * K + 1, amp=True)


def modadd_workload(prof: Profile, *, collated: bool = False) -> Workload:
    """A full-batch run of the grokking transformer, in float32, evaluated every epoch.

    ``collated``: the full batches come from a DataLoader that collates them example by
    example (20 µs an example on the host, every epoch), instead of being indexed at once."""
    p = prof.modadd_p
    n_train = int(p * p * prof.modadd_train_frac)
    n_test = p * p - n_train
    w = _small("modadd", f"transformer p = {p}, {prof.modadd_epochs:,} full-batch epochs", p,
               batch=n_train, steps=prof.modadd_epochs, n_test=n_test,
               evals=prof.modadd_epochs + 1, amp=False, full_batch=True)
    if collated:
        w = replace(w, step_host_s=w.step_host_s + COLLATE_S * (n_train + n_test))
    return w


def gpt2_params() -> tuple[int, int]:
    """``(parameters in matrix products, all parameters)`` of GPT-2 small: 124 M in all."""
    L, d, V = GPT2["layers"], GPT2["d"], GPT2["vocab"]
    matrix = 12 * L * d * d + V * d  # the blocks' matrices and the (tied) unembedding
    return matrix, matrix + 1024 * d + L * 13 * d + 2 * d  # + positions, biases, LayerNorms


def llm_workload(prof: Profile, steps: int) -> Workload:
    """Fine-tuning GPT-2 small (what Colab loads) for ``steps`` steps on WikiText-2."""
    L, d, V = GPT2["layers"], GPT2["d"], GPT2["vocab"]
    T, B = prof.llm_seq_len, prof.llm_batch
    matrix_params, params = gpt2_params()
    fwd_token = 2 * matrix_params + 4 * L * T * d  # matmuls + attention scores and mixing
    chars = [WIKITEXT2_CHARS[0], WIKITEXT2_CHARS[1]]
    if prof.text_chars is not None:
        chars = [min(chars[0], prof.text_chars), min(chars[1], max(prof.text_chars // 10, 1))]
    train_blocks, val_blocks = (int(c / CHARS_PER_TOKEN) // (T + 1) for c in chars)
    per_layer = T * B * d * (34 + 5 * GPT2["heads"] * T / d)  # fp16 activations (Korthikanti 2022)
    memory = 18 * params + L * per_layer + 12 * B * T * V  # + fp16 weight copies, logits
    epochs = math.ceil(steps / max(1, math.ceil(train_blocks / B)))
    return Workload("llm", f"GPT-2 124 M, {steps:,} steps x {B} x {T} tokens", steps,
                    3 * fwd_token * B * T, LOADER_S["llm"] * B + OPS["llm"] * OP_S,
                    fwd_token * val_blocks * T, math.ceil(val_blocks / B) * EVAL_OPS["llm"] * OP_S,
                    epochs + 1, True, memory)


def notebooks(prof: Profile, *, collated_modadd: bool = False) -> list[Notebook]:
    """The GPU work of every notebook at the sizes of ``prof``."""
    mnist, cifar = image_workload(prof, cifar=False), image_workload(prof, cifar=True)
    mnist_zoo = image_workload(prof, cifar=False, pretrained=True)  # modlib.pretrained trains it
    cifar_zoo = image_workload(prof, cifar=True, pretrained=True)
    # reproduce: per seed a baseline, a modular model and (images) the sparse control; each
    # model's analysis is an OFF ablation with one control (2k + 1 evaluations)
    seeds = prof.seeds
    image_runs = 3 * seeds
    reproduce_evals = image_runs * (2 * K + 1)
    sweep = image_runs + seeds * (len(prof.mnist_lams) + len(prof.mnist_ks))  # and both sweeps
    ablations = 2 * ((1 + 5) * K + 1 + (1 + 1) * K + 1)  # OFF (5 controls), ON: both models
    llm_runs = [(llm_workload(prof, prof.llm_steps), 2 * seeds),
                (llm_workload(prof, prof.llm_sweep_steps), seeds * len(prof.llm_lams))]
    kinds = 2 + 2 * ((1 + prof.n_controls) * K + 1)  # token losses; ablation by token kind
    co_clusterings = 24 + 24 + 12 * (2 + 2 + len(prof.llm_lams))  # scores, parts, set-ups, runs
    return [
        Notebook("00 set-up", [], [], 5),
        Notebook("01 weights as graphs", [], [], 10),
        Notebook("02 pretrained, enmeshed", [(mnist_zoo, 1)], [],
                 10 + 0.8 * (prof.n_shuffles + 1) + 20 * prof.resnet18),
        Notebook("03 training for modularity", [(mnist, sweep)], [(mnist, reproduce_evals)],
                 10 + 2 * sweep + 10 * image_runs),
        # 04 and 05 train reproduce's runs again (a fresh Colab runtime has no cache); circuits
        # by both measures on each of reproduce's models: about 10 s each on the CPU side
        Notebook("04 what clusters learn", [(mnist, image_runs)],
                 [(mnist, ablations + reproduce_evals)], 10 + 90 + 10 * image_runs),
        Notebook("05 modular CNNs, CIFAR", [(cifar_zoo, 1), (cifar, image_runs)],
                 [(cifar, ablations + reproduce_evals)], 30 + 60 + 10 * image_runs),
        Notebook("06 grokking transformer",
                 [(modadd_workload(prof, collated=collated_modadd), 2 * seeds)], [], 30),
        Notebook("07 modular language models", llm_runs, [(llm_runs[0][0], kinds)],
                 50 + SPECTRAL_S * co_clusterings, resident=3 * 4 * gpt2_params()[1]),
        # reproduce(method="bimt") with at most three seeds: per seed the three image runs and a
        # BIMT model on MNIST, and a baseline, a modular and a BIMT transformer; BIMT's extra
        # work per step (its cost and the rare swaps) is not counted
        Notebook("08 imposed or emergent",
                 [(mnist, 4 * min(seeds, 3)),
                  (modadd_workload(prof, collated=collated_modadd), 3 * min(seeds, 3))],
                 [(mnist, 4 * min(seeds, 3) * (2 * K + 1))], 30 + 40 * min(seeds, 3)),
    ]


def estimate(nb: Notebook, gpu: Gpu) -> dict[str, float]:
    """Seconds (split by kind) and peak GB of one notebook on ``gpu``."""
    flops = amp_s = fp32_s = host = evals = 0.0
    for w, n in nb.runs:
        flops += n * w.steps * w.step_flops
        arithmetic = n * w.steps * w.step_flops / 1e12
        if w.amp:
            amp_s += arithmetic / gpu.amp_tflops
        else:
            fp32_s += arithmetic / gpu.fp32_tflops
        host += n * w.steps * w.step_host_s
    for w, n in [(w, n * w.evals) for w, n in nb.runs] + nb.extra_evals:
        evals += n * (w.eval_flops / 1e12 / gpu.fp32_tflops + w.eval_host_s)
    fixed = SETUP_S + nb.fixed_s
    peak = max((w.memory for w, _ in nb.runs), default=0.0) + nb.resident
    total = amp_s + fp32_s + host + evals + fixed
    return {"tflop": flops / 1e12, "arithmetic_s": amp_s + fp32_s, "launch_s": host,
            "eval_s": evals, "fixed_s": fixed, "total_s": total, "peak_gb": peak / 1e9}


def estimate_table(prof: Profile, gpu: Gpu) -> str:
    """The estimate of every notebook as a markdown table."""
    rows = ["| notebook | training runs | training TFLOP | arithmetic s | launch + host s | "
            "evaluation s | fixed s | total min | peak GB |", "|---" * 9 + "|"]
    for nb in notebooks(prof):
        e = estimate(nb, gpu)
        runs = "; ".join(f"{n} × {w.label}" for w, n in nb.runs) or "none"
        rows.append(f"| {nb.name} | {runs} | {e['tflop']:,.0f} | {e['arithmetic_s']:.0f} | "
                    f"{e['launch_s']:.0f} | {e['eval_s']:.0f} | {e['fixed_s']:.0f} | "
                    f"{e['total_s'] / 60:.1f} | {e['peak_gb']:.1f} |")
    return "\n".join(rows)


# ---- measurement on a GPU ------------------------------------------------------------------

SIZES = {"mnist": ("mnist_epochs", 1, 2), "cifar": ("cifar_epochs", 1, 2),
         "modadd": ("modadd_epochs", 100, 300), "llm": ("llm_steps", 20, 60)}


def measure(prof: Profile, experiment: str) -> tuple[float, float, float]:
    """``(seconds per run, seconds per epoch or step, peak bytes)`` of ``experiment`` on CUDA,
    from ``modlib.reproduce`` at two sizes (two runs each: baseline and modular)."""
    knob, small, large = SIZES[experiment]

    def timed(n: int) -> float:
        torch.cuda.synchronize()
        start = time.perf_counter()
        modlib.reproduce(experiment, profile=replace(prof, **{knob: n}), progress=False,
                         device="cuda")
        torch.cuda.synchronize()
        return time.perf_counter() - start

    timed(small)  # warm-up: downloads, caches, CUDA and cuDNN start-up
    torch.cuda.reset_peak_memory_stats()
    t_small, t_large = timed(small), timed(large)
    per_unit = (t_large - t_small) / (2 * (large - small))
    return t_small / 2 - per_unit * small, per_unit, float(torch.cuda.max_memory_allocated())


def measured_table(prof: Profile, gpu: Gpu, experiments: list[str]) -> str:
    """Measured training time of every notebook's runs beside the whole-notebook estimate."""
    fits = {name: measure(prof, name) for name in experiments}
    rows = ["| notebook | measured training s | + estimated rest s | total min | estimated "
            "min | peak GB measured | estimated |", "|---" * 7 + "|"]
    for nb in notebooks(prof):
        if not nb.runs or any(w.experiment not in fits for w, _ in nb.runs):
            continue
        e = estimate(nb, gpu)
        train = sum(n * (fits[w.experiment][0] + fits[w.experiment][1] * _units(w, prof))
                    for w, n in nb.runs)
        # the analysis, and LM evaluations after the first epoch (the timed runs had one)
        passes = nb.extra_evals + [(w, n * (w.evals - 2)) for w, n in nb.runs
                                   if w.experiment == "llm"]
        rest = e["fixed_s"] + sum(n * (w.eval_flops / 1e12 / gpu.fp32_tflops + w.eval_host_s)
                                  for w, n in passes)
        peak = max(fits[w.experiment][2] for w, _ in nb.runs)
        rows.append(f"| {nb.name} | {train:.0f} | {rest:.0f} | {(train + rest) / 60:.1f} | "
                    f"{e['total_s'] / 60:.1f} | {peak / 1e9:.1f} | {e['peak_gb']:.1f} |")
    return "\n".join(rows)


def _units(w: Workload, prof: Profile) -> float:
    """How many of the measured units (epochs or steps) one run of ``w`` takes."""
    if w.experiment in ("mnist", "cifar"):
        n_train = (prof.cifar_train or 50_000) if w.experiment == "cifar" else \
            (prof.mnist_train or 60_000)
        return w.steps / math.ceil(n_train / prof.batch_size)
    return w.steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=get_args(ProfileName), default="gpu")
    parser.add_argument("--gpu", choices=sorted(GPUS), default=None,
                        help="the GPU the estimate assumes (default: t4 for the gpu profile, "
                             "a100 for paper)")
    parser.add_argument("--dry-run", action="store_true", help="print the estimate only")
    parser.add_argument("--experiments", nargs="+", choices=list(SIZES), default=list(SIZES))
    args = parser.parse_args(argv)
    prof = modlib.profile(args.profile)
    gpu = GPUS[args.gpu or ("a100" if prof.name == "paper" else "t4")]
    if not args.dry_run and not torch.cuda.is_available():
        print("bench_gpu: no CUDA GPU here, nothing to time (--dry-run prints the estimate).")
        return 0
    print(f"profile {prof.name}; estimate for {gpu.name}: {gpu.amp_tflops:g} TFLOP/s under "
          f"autocast, {gpu.fp32_tflops:g} in fp32, {OP_S * 1e6:g} µs per op (an estimate, not "
          f"a measurement)\n")
    print(estimate_table(prof, gpu))
    slow = estimate(next(nb for nb in notebooks(prof, collated_modadd=True)
                         if nb.name.startswith("06")), gpu)["total_s"]
    print(f"\n06 with its full batches collated by a DataLoader every epoch: {slow / 60:.0f} min")
    if args.dry_run:
        return 0
    device = torch.device("cuda")
    print(f"\n{torch.cuda.get_device_name()}, training in {modlib.train.amp_plan(device)} "
          f"(fp32 for what runs in fp32), torch {torch.__version__}\n")
    print(measured_table(prof, gpu, args.experiments))
    return 0


if __name__ == "__main__":
    sys.exit(main())
