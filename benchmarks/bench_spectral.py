"""Spectral co-clustering, side by side: modlib, modlib refined, scikit-learn and the authors' BSGC.

Every method partitions the same matrices, and each partition is scored the one fair way: its
**excess over chance**, clusterability minus the chance level of its own cluster sizes
(``modlib.clusterability(W, p) - modlib.chance_level(p)``; DESIGN.md). The methods:

- ``modlib``: ``modlib.spectral_cocluster(W, k, seed=s)``, the default (Dhillon 2001).
- ``refined``: ``modlib.spectral_cocluster(W, k, seed=s, refine=True)``: each distinct k-means
  restart refined by moving neurons while the excess rises (``modlib.refine_partition``).
- ``scikit-learn``: ``SpectralCoclustering(n_clusters=k, random_state=s)`` on |W|.
- ``BSGC``: the authors' method as PAPER.md describes it: ``Â = D_r^-1/2 |W| D_c^-1/2``, its
  top-k singular vectors (the trivial one included, no rescaling), k-means (scikit-learn's,
  ``n_init=10``) separately on the rows and on the columns. The authors pair row cluster c
  with column cluster c by label; here the clusters are paired by the best matching instead
  (``scipy.optimize.linear_sum_assignment`` on the excess of every row-cluster/column-cluster
  pair), the most favourable pairing for the method. Dead neurons get a zero embedding (the
  authors' formula divides by their zero degree).
- ``truth``: the planted partition, where there is one.
- ``refined, scale-matched copy``: the refined partition of ``modlib.scale_matched(W)``, a copy
  of W without modules whose rows and columns keep their squared weight. What a partition
  scores there comes from neurons of unequal size alone, not from modules.

The suite (k = the planted k, else 4; three seeds each; a seed makes the matrix and seeds the
methods):

1. Planted modules: Gaussian weights 3–4× larger inside k shuffled co-clusters, k = 2 to 16,
   equal and uneven sizes, 0–10 % dead neurons. ARI: adjusted Rand index of the recovered
   clusters against the planted ones on live neurons, the lower of rows and columns.
2. Enmeshed, trained-like matrices (log-normal neuron norms, four shared directions, a weak
   ×1.3 modular component over 8 modules): 64×64 to 3072×768, and 4096×11008 (LLaMA MLP size)
   with ``--large``.
3. Real trained layers of the course's pretrained models (``modlib.pretrained(name,
   profile="cpu")``; the first run trains the ones not cached yet, a few minutes).
4. Module-free matrices: Gaussian weights whose rows and columns are scaled by log-normal
   factors of spread σ = 0, 0.5, 1, with no modules at all: any excess found is not modules.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_spectral.py [--large]`` (``make bench``): under
a minute on one thread, with or without ``--large``, once the models are cached. Numbers go to
RESULTS.md.
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings
from collections.abc import Callable, Iterator

import numpy as np
import scipy
import sklearn
import torch
from scipy.optimize import linear_sum_assignment
from scipy.sparse.linalg import svds
from sklearn.cluster import KMeans, SpectralCoclustering
from sklearn.metrics import adjusted_rand_score

import modlib

SEEDS = (0, 1, 2)
K_ENMESHED = 4
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
ENMESHED = [(64, 64), (256, 256), (1024, 1024), (3072, 768)]
MODULE_FREE = [(64, 64), (256, 256), (1024, 256)]
SIGMAS = (0.0, 0.5, 1.0)
LARGE = (4096, 11008)
REAL = {  # pretrained model: its layers clustered
    "mnist-mlp": ["fc1", "fc2", "fc3"],
    "mnist-cnn": ["fc1", "fc2"],
    "cifar-cnn": ["fc1", "fc2", "fc3"],
    "gpt2": ["transformer.h.0.mlp.c_fc", "transformer.h.1.mlp.c_fc"],
    "pythia-14m": ["gpt_neox.layers.0.mlp.dense_h_to_4h"],
}
METHODS = ("modlib", "refined", "scikit-learn", "BSGC")


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
    return W, modlib.Partition(rows, cols, k), live_r, live_c


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


def module_free(n_out, n_in, sigma, seed=0):
    """Gaussian weights without modules; rows and columns scaled by exp(sigma · N(0, 1))."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(n_out, n_in, generator=g)
    W *= torch.exp(sigma * torch.randn(n_out, 1, generator=g))
    return W * torch.exp(sigma * torch.randn(1, n_in, generator=g))


def sklearn_partition(W: torch.Tensor, k: int, seed: int) -> modlib.Partition | None:
    """scikit-learn's co-clustering of |W|, or None when it fails (it does on dead neurons)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = SpectralCoclustering(n_clusters=k, random_state=seed).fit(W.abs().numpy())
    except Exception:
        return None
    return modlib.Partition(torch.from_numpy(m.row_labels_), torch.from_numpy(m.column_labels_), k)


def _excess_matrix(W: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, k: int) -> np.ndarray:
    """(k, k) excess over chance of pairing row cluster a with column cluster b."""
    W2 = W.double().square()
    R, C = (torch.nn.functional.one_hot(x, k).double() for x in (rows, cols))
    mass = R.T @ W2 @ C / W2.sum()
    chance = R.sum(0)[:, None] * C.sum(0)[None, :] / W2.numel()
    return (mass - chance).numpy()


def bsgc_partition(W: torch.Tensor, k: int, seed: int) -> modlib.Partition:
    """The authors' BSGC (see the module docstring), row and column clusters best matched."""
    A = W.abs().double().numpy()
    d_r, d_c = A.sum(1), A.sum(0)
    s_r = np.divide(1.0, np.sqrt(d_r), out=np.zeros_like(d_r), where=d_r > 0)
    s_c = np.divide(1.0, np.sqrt(d_c), out=np.zeros_like(d_c), where=d_c > 0)
    A_hat = s_r[:, None] * A * s_c[None, :]
    if min(A.shape) <= 400:
        U, _, Vt = np.linalg.svd(A_hat, full_matrices=False)
        U, V = U[:, :k], Vt[:k].T
    else:
        U, _, Vt = svds(A_hat, k=k, random_state=seed)  # top k, in ascending order
        U, V = U[:, ::-1], Vt[::-1].T
    labels = [torch.from_numpy(KMeans(k, n_init=10, random_state=seed).fit_predict(X)).long()
              for X in (np.ascontiguousarray(U), np.ascontiguousarray(V))]
    rows, cols = labels
    a, b = linear_sum_assignment(_excess_matrix(W, rows, cols, k), maximize=True)
    to_row = torch.empty(k, dtype=torch.long)
    to_row[torch.from_numpy(b)] = torch.from_numpy(a)  # column cluster b joins row cluster a
    return modlib.Partition(rows, to_row[cols], k)


def run_methods(W: torch.Tensor, k: int, seed: int) -> dict[str, tuple]:
    """{method: (partition or None, seconds)} for the four methods."""
    calls: dict[str, Callable[[], modlib.Partition | None]] = {
        "modlib": lambda: modlib.spectral_cocluster(W, k, seed=seed),
        "refined": lambda: modlib.spectral_cocluster(W, k, seed=seed, refine=True),
        "scikit-learn": lambda: sklearn_partition(W, k, seed),
        "BSGC": lambda: bsgc_partition(W, k, seed),
    }
    out = {}
    for name, call in calls.items():
        t = time.perf_counter()
        part = call()
        out[name] = (part, time.perf_counter() - t)
    return out


def excess(W: torch.Tensor, part: modlib.Partition | None) -> float | None:
    if part is None:
        return None
    return float(modlib.clusterability(W, part)) - modlib.chance_level(part)


def weighted_excess(W: torch.Tensor, part: modlib.Partition | None) -> float | None:
    """Clusterability minus a chance level that keeps the neurons' weights: Σ_c R_c K_c, the
    shares of row and column squared weight in cluster c (what a scale-matched copy of W keeps
    inside, in expectation). Not the course's score: printed to show what it would change."""
    if part is None:
        return None
    W2 = W.double().square()
    total = W2.sum()
    R = torch.zeros(part.k, dtype=torch.float64).index_add_(0, part.rows, W2.sum(1)) / total
    K = torch.zeros(part.k, dtype=torch.float64).index_add_(0, part.cols, W2.sum(0)) / total
    return float(modlib.clusterability(W, part)) - float((R * K).sum())


def ari(truth: modlib.Partition, part: modlib.Partition | None, live_r, live_c) -> float | None:
    """The lower of the rows' and the columns' adjusted Rand index, on live neurons."""
    if part is None:
        return None
    return min(adjusted_rand_score(truth.rows[live_r], part.rows[live_r]),
               adjusted_rand_score(truth.cols[live_c], part.cols[live_c]))


def suite(large: bool) -> Iterator[tuple]:
    """(suite, matrix name, W, k, seed, truth or None, live rows, live cols) for every case."""
    for n_out, n_in, k, shares, dead, signal in PLANTED:
        name = f"{n_out}×{n_in}, {'uneven' if shares else 'equal'}, {dead:.0%} dead"
        for seed in SEEDS:
            W, truth, live_r, live_c = planted(n_out, n_in, k, shares, dead, signal, seed)
            yield "planted", name, W, k, seed, truth, live_r, live_c
    for n_out, n_in in ENMESHED + ([LARGE] if large else []):
        for seed in SEEDS:
            yield "enmeshed", f"{n_out}×{n_in}", trained_like(n_out, n_in, seed=seed), \
                K_ENMESHED, seed, None, None, None
    for model_name, layers in REAL.items():
        pt = modlib.pretrained(model_name, profile="cpu", progress=False)
        modules = dict(pt.model.named_modules())
        for layer in layers:
            W = modlib.layer_matrix(modules[layer]).detach().float()
            short = layer.removeprefix("transformer.").removeprefix("gpt_neox.")
            name = f"{model_name} {short} {W.shape[0]}×{W.shape[1]}"
            for seed in SEEDS:
                yield "real", name, W, K_ENMESHED, seed, None, None, None
    for n_out, n_in in MODULE_FREE:
        for sigma in SIGMAS:
            for seed in SEEDS:
                yield "module-free", f"{n_out}×{n_in}, σ = {sigma}", \
                    module_free(n_out, n_in, sigma, seed), K_ENMESHED, seed, None, None, None


def _fmt(x: float | None, spec: str = "+.3f") -> str:
    return "fails" if x is None else format(x, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="add 4096×11008 (slow)")
    large = parser.parse_args().large
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} "
          f"threads; torch {torch.__version__}, scikit-learn {sklearn.__version__}, scipy "
          f"{scipy.__version__}; date {time.strftime('%Y-%m-%d')}")
    warm = trained_like(64, 64)
    run_methods(warm, 4, 0)  # first calls load libraries: not timed below
    print("\nexcess = clusterability − chance level of the partition's own sizes; ARI: the lower "
          "of rows and columns, live neurons; 'fails': scikit-learn raised an error.\n")
    print("| suite | matrix | k | seed | modlib | refined | scikit-learn | BSGC | truth | "
          "refined, scale-matched copy | ARI modlib / refined / sklearn / BSGC | "
          "s modlib / refined / sklearn / BSGC |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for kind, name, W, k, seed, truth, live_r, live_c in suite(large):
        res = run_methods(W, k, seed)
        ex = {m: excess(W, p) for m, (p, _) in res.items()}
        ex["truth"] = excess(W, truth) if truth is not None else None
        weighted = {m: weighted_excess(W, p) for m, (p, _) in res.items()}
        copy = modlib.scale_matched(W, seed=seed)
        ex["scale-matched"] = excess(copy, modlib.spectral_cocluster(copy, k, seed=seed,
                                                                      refine=True))
        aris = ({m: ari(truth, p, live_r, live_c) for m, (p, _) in res.items()}
                if truth is not None else {})
        rows.append((kind, name, W.shape, ex, aris, {m: t for m, (_, t) in res.items()}, weighted))
        ari_text = " / ".join(_fmt(aris[m], ".3f") for m in METHODS) if aris else "–"
        truth_text = _fmt(ex["truth"]) if truth is not None else "–"
        print(f"| {kind} | {name} | {k} | {seed} | "
              + " | ".join(_fmt(ex[m]) for m in METHODS)
              + f" | {truth_text} | {_fmt(ex['scale-matched'])} | {ari_text} | "
              + " / ".join(f"{res[m][1]:.2f}" for m in METHODS) + " |", flush=True)
    summarize(rows)


def summarize(rows: list[tuple]) -> None:
    """Where refined modlib stands against each method, per suite; ARI; speed on large ones."""
    print()
    for kind in ("planted", "enmeshed", "real", "module-free"):
        part = [r for r in rows if r[0] == kind]
        for other in ("modlib", "scikit-learn", "BSGC"):
            margins = [r[3]["refined"] - r[3][other] for r in part if r[3][other] is not None]
            if not margins:
                continue
            below = sum(m < 0 for m in margins)
            print(f"{kind}: refined − {other}: worst {min(margins):+.4f}, median "
                  f"{float(np.median(margins)):+.4f}; below on {below} of {len(margins)} "
                  f"(the other failed on {len(part) - len(margins)})")
    for kind in ("planted", "enmeshed", "real", "module-free"):
        beyond = [r[3]["refined"] - r[3]["scale-matched"] for r in rows if r[0] == kind]
        print(f"{kind}: refined − refined on the scale-matched copy: min {min(beyond):+.3f}, "
              f"median {float(np.median(beyond)):+.3f}, max {max(beyond):+.3f}")
    for name in dict.fromkeys(r[1] for r in rows if r[0] == "module-free"):
        mean = {m: float(np.mean([r[3][m] for r in rows if r[1] == name and r[3][m] is not None]))
                for m in METHODS}
        print(f"module-free {name}: mean excess " + ", ".join(f"{m} {v:+.3f}"
                                                           for m, v in mean.items()))
    print("\nexcess over a chance level that keeps the neurons' weights (Σ_c R_c K_c), median:")
    for kind in ("planted", "enmeshed", "real", "module-free"):
        med = {m: float(np.median([r[6][m] for r in rows if r[0] == kind and r[6][m] is not None]))
               for m in METHODS}
        print(f"{kind}: " + ", ".join(f"{m} {v:+.3f}" for m, v in med.items()))
    planted_aris = [r[4]["refined"] for r in rows if r[0] == "planted"]
    print(f"planted: refined ARI min {min(planted_aris):.3f}; modlib ARI min "
          f"{min(r[4]['modlib'] for r in rows if r[0] == 'planted'):.3f}")
    big = [r for r in rows if r[2][0] * r[2][1] >= 2_000_000]
    for shape in dict.fromkeys(tuple(r[2]) for r in big):
        t = {m: float(np.median([r[5][m] for r in big if tuple(r[2]) == shape])) for m in METHODS}
        print(f"{shape[0]}×{shape[1]}: median s modlib {t['modlib']:.2f}, refined "
              f"{t['refined']:.2f}, scikit-learn {t['scikit-learn']:.2f}, BSGC {t['BSGC']:.2f}; "
              f"scikit-learn / refined = {t['scikit-learn'] / t['refined']:.1f}×, "
              f"scikit-learn / modlib = {t['scikit-learn'] / t['modlib']:.1f}×")


if __name__ == "__main__":
    main()
