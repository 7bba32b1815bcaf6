"""The Fourier view of a modular-addition transformer (Nanda et al. 2023).

A transformer that has grokked ``(a + b) mod p`` embeds each residue ``a`` as ``cos(w a)`` and
``sin(w a)`` for a few *key frequencies* ``w = 2π f / p``, and its MLP neurons compute products of
such waves (*Progress measures for grokking via mechanistic interpretability*). Measured here:
the Fourier basis of Z_p and the frequencies of the embedding, of each MLP hidden neuron and of
each cluster of them, and of the logits (what ablating a cluster takes away:
:func:`ablation_spectra`, :func:`energy_kept` and :func:`selective_clusters`), with two figures.
Frequencies are ``0..(p - 1) // 2``; 0 is the constant. Notebook 06.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import nullcontext

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, TensorDataset

from ..core.partition import Partition, check_partition
from ..hooks import record
from ..training.models import ModAddTransformer
from ..training.train import evaluate
from ..validate import check_data, check_int, check_real, check_tensor, describe
from .interp import _common_k, ablate

__all__ = ["ablation_spectra", "activation_table", "all_pairs", "basis_labels",
           "cluster_frequencies", "cluster_spectra", "embedding_frequencies", "energy_kept",
           "fourier_basis", "frequency_norms", "key_frequencies", "logit_frequencies",
           "neuron_frequencies", "selective_clusters",
           "table_frequencies"]


def _check_p(p: object) -> int:
    p = check_int(p, "p")
    if p < 3 or p % 2 == 0:
        raise ValueError(f"'p' must be an odd int >= 3. Got {p}.")
    return p


def _check_model(model: object) -> ModAddTransformer:
    if not isinstance(model, ModAddTransformer):
        raise TypeError(f"'model' must be a modlib ModAddTransformer. Got {describe(model)}.")
    _check_p(model.p)
    return model


def basis_labels(p: int) -> list[tuple[int, str]]:
    """``(frequency, 'cos' | 'sin')`` of each row of :func:`fourier_basis`; constant: (0, 'cos').

    Example:
        >>> basis_labels(5)
        [(0, 'cos'), (1, 'cos'), (1, 'sin'), (2, 'cos'), (2, 'sin')]
    """
    _check_p(p)
    return [(0, "cos")] + [(f, kind) for f in range(1, (p - 1) // 2 + 1) for kind in ("cos", "sin")]


def fourier_basis(p: int) -> Tensor:
    """The orthonormal real Fourier basis of functions on Z_p, one basis vector per row.

    Row 0 is the constant ``1 / sqrt(p)``; rows ``2f - 1`` and ``2f`` are ``cos(2π f x / p)`` and
    ``sin(2π f x / p)`` times ``sqrt(2 / p)`` for ``f = 1..(p - 1) / 2`` (see :func:`basis_labels`).

    Args:
        p: the modulus, an odd int >= 3 (a prime in the course).

    Returns:
        B: (p, p) float32 with ``B @ B.T == I``; ``B @ v`` are the Fourier coefficients of a
        vector ``v: (p,)`` indexed by residue.

    Raises:
        TypeError: ``p`` is not an int.
        ValueError: ``p`` is even or below 3.

    Example:
        >>> B = fourier_basis(7)
        >>> torch.allclose(B @ B.T, torch.eye(7), atol=1e-5)
        True
    """
    _check_p(p)
    x = torch.arange(p, dtype=torch.float64)
    rows = [torch.full((p,), p**-0.5, dtype=torch.float64)]
    for f in range(1, (p - 1) // 2 + 1):
        angle = 2 * torch.pi * f * x / p
        rows += [torch.cos(angle) * (2 / p) ** 0.5, torch.sin(angle) * (2 / p) ** 0.5]
    return torch.stack(rows).float()  # (p, p)


def _frequency_index(p: int) -> Tensor:
    """(p,) frequency of each basis row: ``[0, 1, 1, 2, 2, ...]``."""
    return torch.tensor([f for f, _ in basis_labels(p)])


def frequency_norms(W: Tensor) -> Tensor:
    """Norm of a function of the residue in the Fourier basis, per frequency.

    Each column of ``W`` is a function on Z_p (row ``a`` holds its value at residue ``a``);
    ``B @ W`` are the columns' Fourier coefficients (``B = fourier_basis(p)``). Frequency f gets
    ``sqrt(||cos row||² + ||sin row||²)`` of ``B @ W``, summed over all columns; frequency 0
    gets the constant row's norm.

    Args:
        W: (p, d) floating-point, p odd >= 3, e.g. an embedding matrix ``W_E``.

    Returns:
        ((p - 1) // 2 + 1,) float32 norms on the CPU; index 0 is the constant. Their squares sum
        to ``||W||²``.

    Raises:
        TypeError: ``W`` is not a floating-point tensor.
        ValueError: ``W`` is not 2-D with an odd number >= 3 of rows, or holds NaN/Inf.

    Example:
        >>> a = torch.arange(7.0)
        >>> W = torch.stack([torch.cos(2 * torch.pi * 3 * a / 7), torch.full((7,), 0.5)], 1)
        >>> [round(x, 2) for x in frequency_norms(W).tolist()]  # constant, f = 1, 2, 3
        [1.32, 0.0, 0.0, 1.87]
    """
    if not isinstance(W, Tensor) or not W.dtype.is_floating_point:
        raise TypeError(f"'W' must be a floating-point tensor. "
                        f"Got {getattr(W, 'dtype', type(W).__name__)}.")
    if W.ndim != 2 or W.shape[0] < 3 or W.shape[0] % 2 == 0:
        raise ValueError(f"'W' must have shape (p, d) with odd p >= 3. Got {tuple(W.shape)}.")
    if not torch.isfinite(W).all():
        raise ValueError("'W' must be finite. Got NaN or Inf values.")
    p = W.shape[0]
    energy = (fourier_basis(p) @ W.detach().float().cpu()).pow(2).sum(1)  # (p,): per basis row
    per_freq = torch.zeros((p - 1) // 2 + 1).index_add_(0, _frequency_index(p), energy)
    return per_freq.sqrt()


def embedding_frequencies(model: ModAddTransformer) -> Tensor:
    """Norm of the token embedding in the Fourier basis, per frequency.

    The embedding of the number tokens, ``W_E = model.embed.weight[:p]: (p, d_model)``, is a
    function of the residue for each of its d_model dimensions: :func:`frequency_norms` of it.

    Args:
        model: a :class:`modlib.ModAddTransformer` with an odd ``p``.

    Returns:
        (p - 1) // 2 + 1 norms, float32 on the CPU; index 0 is the constant.

    Raises:
        TypeError: ``model`` is not a ModAddTransformer.
        ValueError: its ``p`` is even.

    Example:
        >>> embedding_frequencies(ModAddTransformer(7, d_model=8, d_mlp=8)).shape
        torch.Size([4])
    """
    p = _check_model(model).p
    return frequency_norms(model.embed.weight.detach()[:p].float())  # token p is '='


def key_frequencies(model: ModAddTransformer, *, top: int | None = None,
                    threshold: float = 0.5) -> list[int]:
    """The non-constant frequencies that dominate the token embedding, strongest first.

    Rule: frequency f in 1..(p - 1) / 2 is key when its energy (the square of
    :func:`embedding_frequencies`) is at least ``threshold`` times the strongest one's. Weight
    decay leaves a grokked model a handful of such frequencies, while a random embedding spreads
    its energy evenly, so nearly all pass. With ``top``, keep exactly the ``top`` strongest.

    Args:
        model: a :class:`modlib.ModAddTransformer` with an odd ``p``.
        top: number of frequencies to return; None applies ``threshold``.
        threshold: share of the strongest frequency's energy to reach, in (0, 1].

    Returns:
        Frequencies in ``1..(p - 1) // 2``, in decreasing energy.

    Raises:
        TypeError: ``model``, ``top`` or ``threshold`` of the wrong type.
        ValueError: ``top`` outside ``[1, (p - 1) // 2]``, ``threshold`` outside (0, 1].

    Example:
        >>> len(key_frequencies(ModAddTransformer(7, d_model=8, d_mlp=8), top=2))
        2
    """
    n = (_check_model(model).p - 1) // 2
    check_int(top, "top", minimum=1, maximum=n, none_ok=True)
    check_real(threshold, "threshold", minimum=0, maximum=1, low_open=True)
    energy = embedding_frequencies(model)[1:].pow(2)  # (n,): frequencies 1..n
    order = torch.argsort(energy, descending=True, stable=True)
    if top is None:
        top = max(1, int((energy >= threshold * energy.max()).sum()))
    return [int(i) + 1 for i in order[:top]]


def all_pairs(p: int) -> Tensor:
    """(p * p, 3) int64 rows ``(a, b, p)`` for every pair, ``a`` major: the input of the tables.

    Example:
        >>> all_pairs(3)[:2].tolist()
        [[0, 0, 3], [0, 1, 3]]
    """
    a, b = torch.cartesian_prod(torch.arange(_check_p(p)), torch.arange(p)).T  # (p*p,) each
    return torch.stack([a, b, torch.full_like(a, p)], dim=1)


def table_frequencies(table: Tensor) -> tuple[Tensor, Tensor]:
    """Energy per frequency of functions of ``(a, b)`` on Z_p × Z_p, by 2-D Fourier transform.

    Frequency f owns the 8 components whose a- and b-frequencies are each 0 or f, but not both
    0: the waves in ``a`` alone, in ``b`` alone, and their products (``cos(w(a + b))`` is one
    such product). Components mixing two different non-zero frequencies belong to none, so the
    energies sum to at most the variance.

    Args:
        table: (p, p, n) values of n functions, ``table[a, b]``; p odd >= 3.

    Returns:
        ``(energy, variance)``: (n, (p - 1) // 2 + 1) energy per frequency (column 0 is 0, the
        mean is not variance) and (n,) the total variance times ``p * p``.

    Raises:
        TypeError: ``table`` is not a floating-point tensor.
        ValueError: ``table`` is not (p, p, n) with odd p >= 3, or holds NaN/Inf.

    Example:
        >>> a = torch.arange(5.0)
        >>> table = torch.cos(2 * torch.pi * 2 * (a[:, None] + a[None, :]) / 5)[..., None]
        >>> energy, variance = table_frequencies(table)
        >>> round(float(energy[0, 2] / variance[0]), 4)
        1.0
    """
    if not isinstance(table, Tensor) or not table.dtype.is_floating_point:
        raise TypeError(f"'table' must be a floating-point tensor. "
                        f"Got {getattr(table, 'dtype', type(table).__name__)}.")
    if table.ndim != 3 or table.shape[0] != table.shape[1] or table.shape[0] < 3 \
            or table.shape[0] % 2 == 0:
        raise ValueError(f"'table' must have shape (p, p, n) with odd p >= 3. "
                         f"Got {tuple(table.shape)}.")
    if not torch.isfinite(table).all():
        raise ValueError("'table' must be finite. Got NaN or Inf values.")
    p, n_freq = table.shape[0], (table.shape[0] - 1) // 2 + 1
    B = fourier_basis(p).double()
    coef = torch.einsum("ia,jb,abn->nij", B, B, table.detach().double().cpu())  # (n, p, p)
    energy2d = coef.pow(2)
    energy2d[:, 0, 0] = 0.0  # the mean
    freq = _frequency_index(p)
    fa, fb = freq[:, None], freq[None, :]  # (p, 1), (1, p)
    owner = torch.where((fa == fb) | (fb == 0), fa, torch.where(fa == 0, fb, 0))  # (p, p)
    owner[0, 0] = 0
    energy = torch.zeros(coef.shape[0], n_freq, dtype=torch.float64)
    energy.index_add_(1, owner.flatten(), energy2d.flatten(1))
    energy[:, 0] = 0.0  # cross-frequency terms were parked at index 0: they belong to none
    return energy.float(), energy2d.sum((1, 2)).float()


def _pair_table(model: ModAddTransformer, X: Tensor | None, name: str | None) -> Tensor:
    """(p, p, n) values at '=' over the pairs ``(a, b)``: module ``name``'s output, or the
    logits (``name`` None). Duplicated pairs are averaged."""
    p = model.p
    X = all_pairs(p) if X is None else X
    if not isinstance(X, Tensor) or X.dtype.is_floating_point or X.dtype == torch.bool:
        raise TypeError(f"'X' must be an integer tensor of tokens. "
                        f"Got {getattr(X, 'dtype', type(X).__name__)}.")
    if X.ndim != 2 or X.shape[1] != model.n_ctx or X.shape[0] == 0:
        raise ValueError(f"'X' must have shape (N, {model.n_ctx}) with N >= 1. "
                         f"Got {tuple(X.shape)}.")
    cell = (X[:, 0] * p + X[:, 1]).cpu()  # (N,): index of the pair (a, b)
    if int(X[:, :2].min()) < 0 or int(X[:, :2].max()) >= p:
        raise ValueError(f"'X' numbers a, b must lie in [0, {p}). "
                         f"Got values in [{int(X[:, :2].min())}, {int(X[:, :2].max())}].")
    counts = torch.bincount(cell, minlength=p * p)
    if int((counts == 0).sum()):
        raise ValueError(f"'X' must hold every pair (a, b) of Z_{p}, as from all_pairs({p}). "
                         f"Got {int((counts > 0).sum())} of {p * p} pairs.")
    device = next(model.parameters()).device
    watch = record(model, name) if name is not None else nullcontext({})
    with watch as outputs, torch.no_grad():
        logits = model(X.to(device))  # (N, p)
    values = logits if name is None else outputs[name][:, -1]  # (N, T, n) -> (N, n) at '='
    table = torch.zeros(p * p, values.shape[1]).index_add_(0, cell, values.float().cpu())
    return (table / counts[:, None]).view(p, p, -1)


def activation_table(model: ModAddTransformer, X: Tensor | None = None) -> Tensor:
    """The MLP hidden neurons' activations at '=' as tables over the pairs ``(a, b)``.

    Records the ReLU output of ``model.mlp`` (the d_mlp neurons, rows of ``mlp.fc_in``) with a
    temporary forward hook while the model reads every pair.

    Args:
        model: a :class:`modlib.ModAddTransformer` with an odd ``p``.
        X: (N, 3) tokens ``(a, b, p)`` covering every pair (duplicates are averaged); default
            :func:`all_pairs`.

    Returns:
        (p, p, d_mlp) float32 on the CPU: ``table[a, b, i]`` is neuron i's activation.

    Raises:
        TypeError: ``model`` not a ModAddTransformer, ``X`` not an integer tensor.
        ValueError: ``X`` not (N, 3), numbers outside [0, p), or a pair missing.

    Example:
        >>> activation_table(ModAddTransformer(5, d_model=8, d_mlp=16)).shape
        torch.Size([5, 5, 16])
    """
    return _pair_table(_check_model(model), X, "mlp.act")


def neuron_frequencies(model: ModAddTransformer, X: Tensor | None = None) -> Tensor:
    """Share of each MLP hidden neuron's activation variance explained by each frequency.

    Splits the variance of each neuron's :func:`activation_table` by :func:`table_frequencies`.
    Dead neurons (no variance) get a row of zeros.

    Args:
        model: a :class:`modlib.ModAddTransformer` with an odd ``p``.
        X: as for :func:`activation_table`.

    Returns:
        (d_mlp, (p - 1) // 2 + 1) shares in [0, 1], each row summing to at most 1; column f is
        frequency f (column 0 is 0).

    Raises:
        TypeError: ``model`` not a ModAddTransformer, ``X`` not an integer tensor.
        ValueError: ``X`` not (N, 3), numbers outside [0, p), or a pair missing.

    Example:
        >>> neuron_frequencies(ModAddTransformer(5, d_model=8, d_mlp=16)).shape
        torch.Size([16, 3])
    """
    energy, variance = table_frequencies(activation_table(model, X))
    return torch.where(variance[:, None] > 1e-12, energy / variance.clamp_min(1e-12)[:, None], 0.0)


def _check_partition(model: ModAddTransformer, partition: object) -> None:
    check_partition(partition).check_fits(model.mlp.fc_in.weight, "mlp.fc_in.weight")


def cluster_spectra(model: ModAddTransformer, partition: Partition, X: Tensor | None = None
                    ) -> Tensor:
    """Share of each cluster's activation variance explained by each frequency.

    A cluster's spectrum is its MLP hidden neurons' energies per frequency summed, over their
    summed variance, so a loud neuron counts more than a quiet one.

    Args:
        model: a :class:`modlib.ModAddTransformer` with an odd ``p``.
        partition: a :class:`modlib.Partition` of ``mlp.fc_in`` (``rows``: the d_mlp neurons).
        X: as for :func:`activation_table`.

    Returns:
        (k, (p - 1) // 2 + 1) shares in [0, 1], each row summing to at most 1; an empty or dead
        cluster gets a row of zeros.

    Raises:
        TypeError: ``partition`` not a Partition, or as for ``X``.
        ValueError: ``partition`` not fitting ``mlp.fc_in``, or as for ``X``.

    Example:
        >>> from modlib import contiguous_partition
        >>> model = ModAddTransformer(5, d_model=8, d_mlp=16)
        >>> cluster_spectra(model, contiguous_partition(16, 8, 2)).shape
        torch.Size([2, 3])
    """
    _check_partition(_check_model(model), partition)
    energy, variance = table_frequencies(activation_table(model, X))  # (d_mlp, n_freq), (d_mlp,)
    rows = partition.rows.cpu()
    return torch.stack([energy[rows == c].sum(0) / variance[rows == c].sum().clamp_min(1e-12)
                        for c in range(partition.k)])  # (k, n_freq)


def cluster_frequencies(model: ModAddTransformer, partition: Partition, X: Tensor | None = None,
                        *, top: int | None = 3, threshold: float = 0.5) -> dict[int, list[int]]:
    """The dominant frequencies of each cluster of MLP hidden neurons.

    From each row of :func:`cluster_spectra`: the ``top`` strongest frequencies with a share
    above zero or, with ``top=None``, the cluster's *key frequencies*: those whose share is at
    least ``threshold`` times the cluster's strongest (the rule of :func:`key_frequencies`).

    Args:
        model: a :class:`modlib.ModAddTransformer` with an odd ``p``.
        partition: a :class:`modlib.Partition` of ``mlp.fc_in`` (``rows``: the d_mlp neurons).
        X: as for :func:`activation_table`.
        top: most frequencies per cluster, in ``[1, (p - 1) // 2]``; None applies ``threshold``.
        threshold: share of the cluster's strongest frequency to reach, in (0, 1].

    Returns:
        ``{cluster: [frequency, ...]}`` for every cluster ``0..k-1``, strongest first; an empty
        or dead cluster gets ``[]``.

    Raises:
        TypeError: ``partition`` not a Partition, ``top`` or ``threshold`` of the wrong type, or
            as for ``X``.
        ValueError: ``partition`` not fitting ``mlp.fc_in``, ``top`` or ``threshold`` out of
            range, or as for ``X``.

    Example:
        >>> from modlib import contiguous_partition
        >>> model = ModAddTransformer(5, d_model=8, d_mlp=16)
        >>> sorted(cluster_frequencies(model, contiguous_partition(16, 8, 2), top=1))
        [0, 1]
    """
    _check_partition(_check_model(model), partition)
    check_int(top, "top", minimum=1, maximum=(model.p - 1) // 2, none_ok=True)
    check_real(threshold, "threshold", minimum=0, maximum=1, low_open=True)
    out: dict[int, list[int]] = {}
    for c, share in enumerate(cluster_spectra(model, partition, X)):
        order = torch.argsort(share, descending=True, stable=True)
        keep = share > 1e-6
        if top is None:
            keep &= share >= threshold * share.max()
        out[c] = [int(f) for f in order[:top] if keep[f]]
    return out


def logit_frequencies(model: ModAddTransformer, X: Tensor | None = None) -> Tensor:
    """How much of the logits' variation over ``(a, b)`` each frequency carries.

    A grokked model's logit for the answer c is about ``Σ_f α_f cos(w_f (a + b − c))`` over its
    key frequencies, so each frequency it uses shows up here; a cluster whose removal takes a
    frequency away lowers that frequency's energy. Run it inside
    :func:`modlib.analysis.interp.ablate`
    to measure an ablated model.

    Args:
        model: a :class:`modlib.ModAddTransformer` with an odd ``p``.
        X: as for :func:`activation_table`.

    Returns:
        ((p - 1) // 2 + 1,) float32: per frequency, the energy (:func:`table_frequencies`) of the
        p logit tables summed, over ``p * p``: the variance each frequency contributes, summed
        over the logits. Index 0 is 0.

    Raises:
        TypeError: ``model`` not a ModAddTransformer, ``X`` not an integer tensor.
        ValueError: ``X`` not (N, 3), numbers outside [0, p), or a pair missing.

    Example:
        >>> logit_frequencies(ModAddTransformer(5, d_model=8, d_mlp=16)).shape
        torch.Size([3])
    """
    p = _check_model(model).p
    energy, _ = table_frequencies(_pair_table(model, X, None))  # (p, n_freq): one row per logit
    return energy.sum(0) / (p * p)


def ablation_spectra(model: ModAddTransformer, partitions: dict[str, Partition],
                     test: Dataset | tuple[Tensor, Tensor], X: Tensor | None = None
                     ) -> tuple[list[float], Tensor]:
    """Accuracy and logit energy per frequency, intact and with each cluster ablated.

    The model is measured intact, then inside :func:`modlib.analysis.interp.ablate` for each
    cluster ``0..k-1`` of ``partitions`` (OFF ablation): each time its accuracy on ``test``
    (:func:`modlib.evaluate`, one batch) and :func:`logit_frequencies`. A cluster that carries
    some frequencies takes their energy out of the logits when it is removed (see
    :func:`energy_kept` and :func:`selective_clusters`).

    Args:
        model: a :class:`modlib.ModAddTransformer` with an odd ``p``.
        partitions: ``{layer name: Partition}`` with one k, e.g. ``{"mlp.fc_in": partition}``.
        test: the held-out pairs, a dataset of ``(X, y)`` (``modular_addition(...).test``) or
            an ``(X, y)`` pair of tensors.
        X: the pairs :func:`logit_frequencies` reads; default :func:`all_pairs`.

    Returns:
        ``(accuracy, energy)``: 1 + k accuracies (intact first, then without cluster 0, 1, …)
        and a (1 + k, (p - 1) // 2 + 1) float32 tensor, row ``1 + c`` the logit energy per
        frequency without cluster c.

    Raises:
        TypeError: ``model`` not a ModAddTransformer, ``test`` neither a dataset nor tensors.
        ValueError: as :func:`modlib.analysis.interp.ablate` and :func:`logit_frequencies`.

    Example:
        >>> from modlib import contiguous_partition
        >>> model = ModAddTransformer(5, d_model=8, d_mlp=16)
        >>> test = (all_pairs(5), all_pairs(5)[:, :2].sum(1) % 5)
        >>> acc, energy = ablation_spectra(model, {"mlp.fc_in": contiguous_partition(16, 8, 2)},
        ...                                test)
        >>> len(acc), tuple(energy.shape)
        (3, (3, 3))

    Introduced in notebook 06.
    """
    _check_model(model)
    if isinstance(test, tuple):
        test = TensorDataset(*check_data(*test))
    elif not isinstance(test, Dataset):
        raise TypeError(f"'test' must be a dataset of (X, y) or a pair of tensors (X, y). "
                        f"Got {describe(test)}.")
    if not hasattr(test, "__len__") or len(test) == 0:
        raise ValueError(f"'test' must hold at least one example. Got {describe(test)}.")
    loader = DataLoader(test, batch_size=len(test))
    k = _common_k(partitions)

    def measure() -> tuple[float, Tensor]:
        return evaluate(model, loader)["accuracy"], logit_frequencies(model, X)

    measured = [measure()]  # intact first, then without cluster 0, 1, ...
    for c in range(k):
        with ablate(model, partitions, c):
            measured.append(measure())
    return [a for a, _ in measured], torch.stack([e for _, e in measured])


def _check_energy_keys(energy: object, keys: object) -> tuple[Tensor, dict[int, list[int]]]:
    check_tensor(energy, "energy", kind="float")
    if energy.ndim != 2 or energy.shape[0] < 2 or energy.shape[1] < 1:
        raise ValueError(f"'energy' must be a float tensor (1 + k, n_freq) with k >= 1, as "
                         f"ablation_spectra returns. Got {describe(energy)}.")
    k, n_freq = energy.shape[0] - 1, energy.shape[1]
    if isinstance(keys, Mapping):
        if set(keys) != set(range(k)):
            raise ValueError(f"'keys' must give the frequencies of each cluster 0..{k - 1}. "
                             f"Got clusters {sorted(keys)}.")
    elif not isinstance(keys, Sequence) or len(keys) != k:
        raise ValueError(f"'keys' must give the frequencies of each of the {k} clusters, "
                         f"as cluster_frequencies returns. Got {describe(keys)}.")
    for c in range(k):
        if isinstance(keys[c], (str, Mapping)) or not isinstance(keys[c], Sequence):
            raise TypeError(f"'keys[{c}]' must be a list of frequencies. Got {describe(keys[c])}.")
    out = {c: [check_int(f, "keys", minimum=0, maximum=n_freq - 1) for f in keys[c]]
           for c in range(k)}
    return energy, out


def energy_kept(energy: Tensor, keys: Mapping[int, Sequence[int]] | Sequence[Sequence[int]]
                ) -> tuple[list[float], list[float]]:
    """Share of the intact logit energy left at each cluster's own and others' key frequencies.

    For cluster c: ``own[c]`` is the energy at its key frequencies ``keys[c]`` without it over
    the intact energy there; ``other[c]`` the same at the key frequencies of the other clusters
    that are not also its own. NaN where there is no such frequency.

    Args:
        energy: ``(1 + k, n_freq)``, as :func:`ablation_spectra` returns: intact, then
            without each cluster.
        keys: each cluster's key frequencies, ``{c: [f, ...]}`` as
            :func:`cluster_frequencies` with ``top=None`` returns (or a list of lists).

    Returns:
        ``(own, other)``, k floats each.

    Raises:
        ValueError: ``energy`` not a (1 + k, n_freq) float tensor, ``keys`` not one list per
            cluster, or a frequency outside ``[0, n_freq)``.
        TypeError: a frequency that is not an int.

    Example:
        >>> energy = torch.tensor([[0.0, 4.0, 4.0], [0.0, 1.0, 4.0], [0.0, 4.0, 2.0]])
        >>> energy_kept(energy, {0: [1], 1: [2]})
        ([0.25, 0.5], [1.0, 1.0])

    Introduced in notebook 06.
    """
    energy, keys = _check_energy_keys(energy, keys)

    def kept(c: int, freqs: list[int]) -> float:
        if not freqs:
            return float("nan")
        return float(energy[1 + c, freqs].sum() / energy[0, freqs].sum())

    union = sorted({f for fs in keys.values() for f in fs})
    own = [kept(c, keys[c]) for c in range(len(keys))]
    other = [kept(c, [f for f in union if f not in keys[c]]) for c in range(len(keys))]
    return own, other


def selective_clusters(energy: Tensor,
                       keys: Mapping[int, Sequence[int]] | Sequence[Sequence[int]], *,
                       max_kept: float = 0.95, ratio: float = 2.0) -> list[bool]:
    """Which clusters take their own frequencies out of the logits, and mostly those.

    Rule: cluster c is selective when removing it keeps at most ``max_kept`` of the logit
    energy at its own key frequencies, and the share it loses there is at least ``ratio`` times
    the share lost at the other clusters' key frequencies (:func:`energy_kept`):
    ``own <= max_kept and 1 - own >= ratio * (1 - other)``. A cluster without key frequencies,
    or whose frequencies are all shared (no other frequency to compare with), is not.

    Args:
        energy: ``(1 + k, n_freq)``, as :func:`ablation_spectra` returns.
        keys: each cluster's key frequencies, as :func:`energy_kept`.
        max_kept: most energy kept at its own frequencies, in (0, 1].
        ratio: how many times larger the own loss must be, > 0.

    Returns:
        k bools, one per cluster.

    Raises:
        ValueError: as :func:`energy_kept`; ``max_kept`` or ``ratio`` out of range.
        TypeError: as :func:`energy_kept`; ``max_kept`` or ``ratio`` not a real.

    Example:
        >>> energy = torch.tensor([[0.0, 4.0, 4.0], [0.0, 1.0, 4.0], [0.0, 3.9, 3.9]])
        >>> selective_clusters(energy, {0: [1], 1: [2]})
        [True, False]

    Introduced in notebook 06.
    """
    max_kept = check_real(max_kept, "max_kept", minimum=0, maximum=1, low_open=True)
    ratio = check_real(ratio, "ratio", minimum=0, low_open=True)
    own, other = energy_kept(energy, keys)
    return [o <= max_kept and 1 - o >= ratio * (1 - x)
            for o, x in zip(own, other, strict=True)]
