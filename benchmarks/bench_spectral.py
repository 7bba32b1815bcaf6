"""Spectral co-clustering: modlib against scikit-learn's SpectralCoclustering.

1. Planted modules (uneven sizes, dead neurons, 64×32 to 1024×1024, k = 2 to 16): adjusted Rand
   index of the recovered row and column clusters (live neurons only).
2. Dense trained-like matrices of GPT-2 MLP size (3072×768) and LLaMA MLP size (4096×11008),
   k = 8: wall time and the clusterability of the partition found, beside its chance level.

Run: ``python benchmarks/bench_spectral.py`` (``make bench``). Numbers go to RESULTS.md.
"""

from __future__ import annotations

import platform
import time
import warnings

import torch
from sklearn.cluster import SpectralCoclustering
from sklearn.metrics import adjusted_rand_score

import modlib

PLANTED = [  # (n_out, n_in, k, cluster shares or None for equal, dead fraction, signal)
    (64, 32, 2, None, 0.0, 4.0),
    (128, 64, 4, [0.4, 0.3, 0.2, 0.1], 0.0, 4.0),
    (256, 128, 4, None, 0.05, 3.0),
    (300, 120, 8, None, 0.0, 4.0),
    (512, 256, 8, [0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05], 0.05, 4.0),
    (512, 512, 16, None, 0.0, 4.0),
    (1024, 512, 16, None, 0.1, 3.0),
    (1024, 1024, 16, [1.0] * 8 + [0.5] * 8, 0.05, 3.0),
]


def planted(n_out, n_in, k, shares, dead, signal, seed=0):
    """Gaussian weights, `signal` times larger inside k shuffled modules; some neurons dead."""
    g = torch.Generator().manual_seed(seed)
    p = torch.tensor(shares or [1.0] * k)
    rows = torch.multinomial(p, n_out, replacement=True, generator=g)
    cols = torch.multinomial(p, n_in, replacement=True, generator=g)
    inside = rows[:, None] == cols[None]
    W = torch.randn(n_out, n_in, generator=g) * torch.where(inside, signal, 1.0)
    live_r = torch.rand(n_out, generator=g) >= dead
    live_c = torch.rand(n_in, generator=g) >= dead
    W[~live_r] = 0.0
    W[:, ~live_c] = 0.0
    return W, rows, cols, live_r, live_c


def trained_like(n_out, n_in, k=8, seed=0):
    """Dense weights with what trained layers have: neurons of very different norms, a few
    strong shared directions, and a weak modular component (×1.3 inside k modules)."""
    g = torch.Generator().manual_seed(seed)
    rows, cols = torch.randint(k, (n_out,), generator=g), torch.randint(k, (n_in,), generator=g)
    W = 0.02 * torch.randn(n_out, n_in, generator=g)
    W *= torch.exp(0.5 * torch.randn(n_out, 1, generator=g))  # log-normal neuron norms
    W *= torch.exp(0.5 * torch.randn(1, n_in, generator=g))
    W += 0.01 * torch.randn(n_out, 4, generator=g) @ torch.randn(4, n_in, generator=g)
    return W * torch.where(rows[:, None] == cols[None], 1.3, 1.0)


def sklearn_partition(W: torch.Tensor, k: int) -> modlib.Partition | None:
    """scikit-learn's co-clustering of |W|, or None when it fails."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = SpectralCoclustering(n_clusters=k, random_state=0).fit(W.abs().numpy())
    except Exception as e:  # it fails on dead neurons: record that, do not stop the benchmark
        print(f"    scikit-learn failed: {type(e).__name__}: {str(e)[:70]}")
        return None
    return modlib.Partition(torch.from_numpy(m.row_labels_), torch.from_numpy(m.column_labels_), k)


def ari(p, rows, cols, live_r, live_c) -> str:
    if p is None:
        return "fails"
    return f"{adjusted_rand_score(rows[live_r], p.rows[live_r]):.3f} / " \
           f"{adjusted_rand_score(cols[live_c], p.cols[live_c]):.3f}"


def bench_planted() -> bool:
    print("\n| shape | k | sizes | dead | modlib ARI rows / cols | scikit-learn ARI rows / cols |")
    print("|---|---|---|---|---|---|")
    ok = True
    for n_out, n_in, k, shares, dead, signal in PLANTED:
        W, rows, cols, lr, lc = planted(n_out, n_in, k, shares, dead, signal)
        ours = modlib.spectral_cocluster(W, k)
        a_r = adjusted_rand_score(rows[lr], ours.rows[lr])
        a_c = adjusted_rand_score(cols[lc], ours.cols[lc])
        ok &= min(a_r, a_c) >= 0.99
        theirs = sklearn_partition(W, k)
        print(f"| {n_out}×{n_in} | {k} | {'uneven' if shares else 'equal'} | {dead:.0%} | "
              f"{ari(ours, rows, cols, lr, lc)} | {ari(theirs, rows, cols, lr, lc)} |")
    return ok


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def bench_dense() -> bool:
    print("\n| shape | k | modlib s | scikit-learn s | speed-up | modlib C (chance) | "
          "scikit-learn C (chance) |")
    print("|---|---|---|---|---|---|---|")
    ok = True
    for (n_out, n_in), need in [((3072, 768), 1.0), ((4096, 11008), 3.0)]:
        W = trained_like(n_out, n_in)
        modlib.spectral_cocluster(W[:64, :64], 8)  # warm-up: first-call library loading
        ours, t_ours = timed(modlib.spectral_cocluster, W, 8)
        theirs, t_theirs = timed(sklearn_partition, W, 8)
        c_ours, c_theirs = (float(modlib.clusterability(W, p)) for p in (ours, theirs))
        speed = t_theirs / t_ours
        ok &= speed >= need and c_ours >= c_theirs
        print(f"| {n_out}×{n_in} | 8 | {t_ours:.2f} | {t_theirs:.2f} | {speed:.1f}× "
              f"(need ≥ {need:g}×) | {c_ours:.3f} ({modlib.chance_level(ours):.3f}) | "
              f"{c_theirs:.3f} ({modlib.chance_level(theirs):.3f}) |")
    return ok


def main() -> None:
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} "
          f"threads; torch {torch.__version__}; date {time.strftime('%Y-%m-%d')}")
    ok_planted = bench_planted()
    ok_dense = bench_dense()
    print(f"\nplanted: every ARI ≥ 0.99: {ok_planted}; dense: speed and clusterability targets "
          f"met: {ok_dense}")


if __name__ == "__main__":
    main()
