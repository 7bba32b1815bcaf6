"""Throughput of language-model fine-tuning, with and without the clusterability loss.

Fine-tuning steps (AdamW, bf16 autocast on CUDA) of the profile's GPT-2: the real GPT-2 where
it can be loaded, else the course's small stand-in. Sequences of ``llm_seq_len`` random tokens,
``llm_batch`` per step, the MLP-in matrix of every block clustered into k = 4 spectral clusters.
Steps with and without the loss alternate, so that both see the same machine state; the report
gives tokens per second for each and the median of the per-pair time ratios.

Run: ``python benchmarks/bench_llm.py [--profile ci|cpu|gpu] [--pairs N]`` (``make bench`` runs
the default profile). Numbers go to RESULTS.md with the machine and the date.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from _timing import interleave
from torch import nn

import modlib
from modlib.analysis.llm import mlp_layers, spectral_partitions

LAM, K, WARMUP = 20.0, 4, 3


def make_step(model: nn.Module, loss_fn: modlib.ClusterabilityLoss | None, tokens: torch.Tensor,
              device: torch.device):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    amp = torch.autocast("cuda", torch.bfloat16, enabled=device.type == "cuda")

    def step() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with amp:
            out = model(tokens[:, :-1])
        logits = out.logits if hasattr(out, "logits") else out
        loss = nn.functional.cross_entropy(logits.float().flatten(0, 1), tokens[:, 1:].flatten())
        if loss_fn is not None:
            loss = loss + LAM * loss_fn()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=["ci", "cpu", "gpu"], default=None)
    parser.add_argument("--pairs", type=int, default=20, help="interleaved pairs of steps")
    args = parser.parse_args()
    prof = modlib.profile(args.profile)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    pt = modlib.pretrained("gpt2", profile=prof, progress=False)
    plain_model = pt.model.to(device).train()
    modular_model = copy.deepcopy(plain_model)
    parts = spectral_partitions(modular_model, K, mlp_layers(modular_model, "in"), progress=False)
    loss_fn = modlib.ClusterabilityLoss(modular_model, K, partitions=parts)
    vocab = plain_model.get_input_embeddings().num_embeddings
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(vocab, (prof.llm_batch, prof.llm_seq_len + 1), generator=g).to(device)
    plain = make_step(plain_model, None, tokens, device)
    modular = make_step(modular_model, loss_fn, tokens, device)
    t_plain, t_mod = interleave(plain, modular, args.pairs, WARMUP)
    per_step = prof.llm_batch * prof.llm_seq_len
    name = torch.cuda.get_device_name() if device.type == "cuda" else \
        f"CPU, {torch.get_num_threads()} threads"
    print(f"{pt.source} ({sum(p.numel() for p in plain_model.parameters()) / 1e6:.1f} M "
          f"parameters), profile {prof.name}, {name}")
    print(f"batch {prof.llm_batch} x {prof.llm_seq_len} tokens, k = {K}, clustered: "
          f"{len(parts)} MLP-in matrices, {args.pairs} interleaved pairs")
    for label, times in (("without the loss", t_plain), ("with the loss", t_mod)):
        med = statistics.median(times)
        print(f"{label:>17}: {med * 1e3:8.1f} ms per step, {per_step / med:10.0f} tokens/s")
    ratio = statistics.median(b / a for a, b in zip(t_plain, t_mod, strict=True))
    print(f"median time ratio with / without: {ratio:.3f}")


if __name__ == "__main__":
    main()
