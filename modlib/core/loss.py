"""The clusterability loss: 1 − mean clusterability over chosen layers, with clusters fixed.

Training minimises ``L_task + lam * ClusterabilityLoss(model, k)()`` (Golechha et al. 2025).
The partition of every layer is fixed before training: contiguous equal blocks aligned along the
model (training from scratch), or a spectral partition of a pretrained model (fine-tuning).
Under sharded training (FSDP2 ``fully_shard``, weights held as row-sharded ``DTensor``) each
process sums its own rows and one all-reduce per call gives the exact loss (book: scaling.md).
Introduced in notebook 03 (training for modularity).
"""

from __future__ import annotations

import math
import sys

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from ..validate import (
    check_int,
    check_layer_names,
    check_mapping,
    check_module,
    describe,
)
from .graph import _is_conv1d, aligned_partitions, squared_matrix, weight_layers
from .partition import Partition, check_partition

__all__ = ["ClusterabilityLoss", "ScatteredMaskLoss"]


class _InsideShare(torch.autograd.Function):
    """C = sum(W² · M) / S, S = sum(W²), with its closed-form gradient 2 W (M − C) / S.

    The mask M = A Bᵀ is given by the one-hot labels A (d0, k) of W's first dim and B (d1, k)
    of its second; a conv weight is read as the (d0, d1·kh·kw) matrix X of its kernel entries,
    each kernel entry taking its slice's column label. Both paths first reduce X to ``per``
    (d0, k), the squared mass of each row in each column cluster; then S = sum(per) and the
    inside mass is per · A. No (d0, d1) mask is ever built.

    - Fast path, ``B is None``: the columns are k contiguous equal blocks (column j in cluster
      ``j // (d1 / k)``), the common training case. X viewed as (d0, k, d1·kh·kw / k) gives
      ``per`` as one fused square-and-sum over the inner dim (a norm, squared: no W² is
      written), and the gradient is one broadcast product X · G, G = (A − C)·2g/S of shape
      (d0, k, 1): W is read once forward and once backward, and only the gradient is written.
    - General path, any column labels: ``per = X² B`` (X² written once, one thin matmul, B's
      rows repeated for the kernel entries), and the factor (M − C)·2g/S = (A·2g/S)(B − C)ᵀ
      (A's rows sum to 1) is written by one more thin matmul, then multiplied by X in place.

    Autograd of the plain formula makes about ten passes over W and keeps W² and W² · M alive;
    this saves only W, the factors and two scalars (C and S). Not twice differentiable.
    """

    @staticmethod
    def forward(ctx, W: Tensor, A: Tensor, B: Tensor | None) -> Tensor:
        per, B = _per_cluster(W, A, B)
        total, inside = per.sum(), torch.dot(per.view(-1), A.reshape(-1))
        # An all-zero layer (or one whose squares underflow) is divided by inf: share 0 and
        # gradient 0. NaN/Inf weights still give NaN: they are never hidden as 0.
        denom = torch.where(total != 0, total, torch.inf)
        share = inside / denom
        ctx.save_for_backward(W, A, B, share, denom)
        return share

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
        W, A, B, share, denom = ctx.saved_tensors
        coef = (grad * 2).div_(denom)  # 2g/S
        if B is None:  # one product, broadcast over each row's column blocks
            G = (A - share).mul_(coef).unsqueeze(2)  # (d0, k, 1)
            out = W.reshape(*A.shape, -1) * G
        else:  # (d0, d1[·kh·kw]): (M − C)·2g/S, times W in place (a fresh buffer costs a pass)
            out = (A.mul(coef) @ (B - share).T).mul_(W.reshape(len(A), -1))
        return out.view(W.shape).to(W.dtype), None, None


def _per_cluster(W: Tensor, A: Tensor, B: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """(d0, k) squared mass of each row of W in each column cluster, and B as the entries use it.

    The forward pass shared by :class:`_InsideShare` and :class:`_ShardSums`. Shapes are
    spelled out (no -1), so that a shard with no rows (d0 = 0) reshapes too.
    """
    d0, k = A.shape
    width = math.prod(W.shape[1:])  # d1[·kh·kw]
    if B is None:  # (d0, k, block): a block's columns (and kernel entries) are contiguous
        per = torch.linalg.vector_norm(W.reshape(d0, k, width // k), dim=2,
                                       dtype=A.dtype).square_()
    else:
        X = W.reshape(d0, width)  # (d0, d1[·kh·kw]), a view of a contiguous W
        if width != len(B):  # a conv: every kernel entry of a slice takes its label
            B = B.repeat_interleave(width // len(B), 0)
        per = X.to(A.dtype).square() @ B
    return per, B


class _ShardSums(torch.autograd.Function):
    """(inside, total) = (sum(W² · M), sum(W²)) of a block of rows of W, with closed-form gradient.

    The sharded twin of :class:`_InsideShare`: W holds some rows of a layer's weight (its
    shard), A the same rows of the row labels. The gradient of g_in·inside + g_tot·total is
    2 W (g_in·M + g_tot), written with F = 2 (g_in·A + g_tot) of shape (d0, k) as
    ``F Bᵀ ∘ W`` (B's rows sum to 1), or as one broadcast product when B is None.
    """

    @staticmethod
    def forward(ctx, W: Tensor, A: Tensor, B: Tensor | None) -> Tensor:
        per, B = _per_cluster(W, A, B)
        ctx.save_for_backward(W, A, B)
        return torch.stack([torch.dot(per.view(-1), A.reshape(-1)), per.sum()])

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
        W, A, B = ctx.saved_tensors
        F = A.mul(grad[0] * 2).add_(grad[1] * 2)  # (d0, k)
        width = math.prod(W.shape[1:])  # d1[·kh·kw]
        if B is None:  # (d0, k, block) times (d0, k, 1)
            out = W.reshape(*A.shape, width // A.shape[1]) * F.unsqueeze(2)
        else:  # B was repeated for a conv's kernel entries in forward: (width, k)
            out = (F @ B.T).mul_(W.reshape(len(A), width))
        return out.view(W.shape).to(W.dtype), None, None


class _SumOverShards(torch.autograd.Function):
    """The sum of a tensor over the processes of ``groups``; its gradient passes unchanged.

    Every process computes the same loss from the summed tensor, so d loss / d sum is the same
    on every process, and d sum / d (this process's part) is 1: the part's gradient is the
    sum's, as it is. (``torch.distributed.nn.functional.all_reduce`` sums the gradient over
    the processes too, which would multiply the loss's gradient by their number.)
    """

    @staticmethod
    def forward(ctx, x: Tensor, groups: tuple) -> Tensor:
        import torch.distributed as dist  # a DTensor exists: torch.distributed is loaded

        x = x.clone()
        for group in groups:
            dist.all_reduce(x, group=group)
        return x

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        return grad, None


def _dtensor_type() -> type | None:
    """``DTensor``, when its module is loaded (as it is once a model is sharded), else None:
    the loss never imports torch.distributed itself."""
    return getattr(sys.modules.get("torch.distributed.tensor"), "DTensor", None)


def _row_shard(W: Tensor, name: str) -> tuple[Tensor, int, tuple]:
    """This process's rows of a row-sharded DTensor weight (FSDP2 ``fully_shard``).

    Returns:
        ``(local, start, groups)``: the local rows (a differentiable view of W, whose gradient
        becomes W's sharded ``.grad``), the global index of the first, and the process groups
        of the mesh dims that shard W (the local sums add up over them; a replicated dim, as
        in HSDP, holds copies and is not summed over).

    Raises:
        ValueError: W is sharded otherwise than by rows (``Shard(0)``), e.g. by columns or
            with tensor parallelism, or partially reduced.
    """
    from torch.distributed.tensor import Replicate, Shard
    from torch.distributed.tensor._utils import compute_local_shape_and_global_offset

    placements = tuple(W.placements)
    # exactly Shard: a _StridedShard (FSDP with tensor parallelism) has another row layout
    rows = [type(p) is Shard and p.dim == 0 for p in placements]
    if not all(r or isinstance(p, Replicate) for r, p in zip(rows, placements, strict=True)):
        raise ValueError(f"Layer '{name}' has a DTensor weight placed as {placements}: the "
                         f"clusterability loss supports weights sharded by their first dim "
                         f"(Shard(0), what fully_shard does by default) or replicated, not "
                         f"{type(W).__name__}s split otherwise (a shard_placement_fn, tensor "
                         f"parallelism).")
    local = W.to_local()
    shape, offset = compute_local_shape_and_global_offset(W.shape, W.device_mesh, placements)
    if tuple(local.shape) != tuple(shape):  # a layout the offset above does not describe
        raise ValueError(f"Layer '{name}': the local shard has shape {tuple(local.shape)}, "
                         f"but its placements {placements} give {tuple(shape)}.")
    groups = tuple(W.device_mesh.get_group(d) for d, r in enumerate(rows) if r)
    return local, int(offset[0]), groups


def _inside_share(W: Tensor, A: Tensor, B: Tensor | None = None) -> Tensor:
    """Share of the squared mass of ``W`` inside the mask M = A Bᵀ, differentiable in ``W``.

    Sums are taken in ``A.dtype`` (float32 or float64): float16 and bfloat16 weights are read
    in float32 and get their gradient back in their own dtype.

    Args:
        W: a layer's weight in its stored layout, (d0, d1) or (d0, d1, kh, kw) for a Conv2d
            (each kernel slice is one edge, its squared weight the slice's sum of squares).
        A: (d0, k) one-hot cluster labels of W's first dim (rows, or cols for a Conv1D).
        B: (d1, k) one-hot cluster labels of W's second dim, or ``None`` when they are k
            contiguous equal blocks (label ``j // (d1 / k)``, see :func:`_equal_blocks`): the
            same value and gradient, computed by the fast path of :class:`_InsideShare`.

    Returns:
        A scalar in [0, 1] of dtype ``A.dtype``: 0 for an all-zero ``W``, whose gradient is
        then 0 (not NaN).

    Example:
        >>> W = torch.ones(2, 2, requires_grad=True)
        >>> _inside_share(W, torch.eye(2), torch.eye(2)).backward()
        >>> W.grad  # 2 W (M − C) / S with M = I, C = 1/2, S = 4
        tensor([[ 0.2500, -0.2500],
                [-0.2500,  0.2500]])
        >>> W.grad = None
        >>> _inside_share(W, torch.eye(2)).backward()  # the same, columns as 2 equal blocks
        >>> W.grad
        tensor([[ 0.2500, -0.2500],
                [-0.2500,  0.2500]])
    """
    return _InsideShare.apply(W, A, B)


def _equal_blocks(labels: Tensor, k: int) -> bool:
    """True when ``labels`` are k contiguous equal blocks in order: label ``j // (n / k)``.

    Example:
        >>> _equal_blocks(torch.tensor([0, 0, 1, 1]), 2)
        True
        >>> _equal_blocks(torch.tensor([0, 1, 0, 1]), 2)  # not contiguous
        False
        >>> _equal_blocks(torch.tensor([0, 0, 0, 1]), 2)  # not equal
        False
    """
    n = labels.numel()
    return n % k == 0 and torch.equal(labels.cpu(), torch.arange(n) // (n // k))


def _one_hot(labels: Tensor, k: int, dtype: torch.dtype) -> Tensor:
    """(n, k) one-hot of cluster labels; ``_one_hot(rows) @ _one_hot(cols).T`` is the mask."""
    return torch.nn.functional.one_hot(labels, k).to(dtype)


class ClusterabilityLoss(nn.Module):
    """``1 − mean clusterability`` of a model's chosen layers, differentiable in their weights.

    The module holds only the cluster masks (as non-persistent buffers, computed once, each
    as the two one-hot factors of M = rows · colsᵀ in the weight's stored layout; the second is
    ``None`` when the weight's second dim is k contiguous equal blocks, as in the default
    aligned partitions, and the layer then takes the fast path of :class:`_InsideShare`), not
    the model's parameters: ``loss.parameters()`` is empty and ``loss.state_dict()`` adds
    nothing to a checkpoint. Masks follow the weights' device (and float32/float64 summing
    dtype) at every call. Backward uses the closed-form gradient 2 W (M − C) / sum(W²) (see
    :func:`_inside_share`), not autograd of the formula.

    Sharded training (FSDP2 ``fully_shard``): build the loss from the model before or after
    sharding it. A weight held as a ``DTensor`` split by rows (``Shard(0)``; a Conv1D's rows are
    its input neurons) is read as this process's rows only: each process sums inside and total
    mass over its rows with the same rows of the mask, one all-reduce adds the two numbers of
    every sharded layer up over the processes, and C = inside / total is exact. The gradient of
    the local rows is their rows of the unsharded gradient; it lands in the sharded ``.grad``,
    next to what FSDP reduces. Every process must then call the loss (and
    :meth:`clusterability`) together. See the book page ``scaling.md``.

    Args:
        model: the network whose layers are clustered.
        k: number of clusters per layer.
        layers: module names of Linear / Conv2d / Conv1D layers; default
            :func:`modlib.core.graph.default_layers` (every such layer with both sides >= k but the
            first and last).
        partitions: ``{name: Partition}``, e.g. from :func:`modlib.spectral_cocluster` of a
            pretrained model; layers not in it get contiguous aligned blocks
            (:func:`modlib.core.graph.aligned_partitions`). Its names are clustered even when
            ``layers`` does not list them.

    Raises:
        TypeError: ``model`` not an ``nn.Module``, ``k`` not an int, ``layers`` not a list of
            str, ``partitions`` not a dict of :class:`Partition`.
        ValueError: no or unknown layer names, ``k`` larger than a side of a chosen layer, or a
            partition whose k or shape does not fit its layer. At a call: a layer whose weight
            changed shape, or a DTensor weight sharded otherwise than by rows.

    Example:
        >>> model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8), nn.Linear(8, 2))
        >>> loss = ClusterabilityLoss(model, k=2)
        >>> list(loss.clusterability())
        ['2']
        >>> _ = nn.init.ones_(model[2].weight)  # 2 × 2 blocks: half the squared mass inside
        >>> float(loss().detach())
        0.5

    Introduced in notebook 03.
    """

    def __init__(self, model: nn.Module, k: int, *, layers: list[str] | None = None,
                 partitions: dict[str, Partition] | None = None) -> None:
        super().__init__()
        check_module(model)
        self.k = check_int(k, "k", minimum=1)
        if partitions is not None:
            check_mapping(partitions, "partitions", "{layer name: Partition}", nonempty=False)
            for key, part in partitions.items():
                check_partition(part, f"partitions[{key!r}]")
        partitions = dict(partitions or {})
        names = (check_layer_names(layers, (), "layers", allow_empty=True, check_known=False)
                 if layers is not None else None)
        if names is not None:
            names += [n for n in partitions if n not in names]
        elif partitions:
            names = list(partitions)
        if names is not None and not names:
            raise ValueError("'layers' is empty: name at least one layer to cluster (or pass "
                             "'partitions').")
        parts = aligned_partitions(model, self.k, names)
        modules = weight_layers(model)
        for name, part in partitions.items():
            shape = tuple(squared_matrix(modules[name]).shape)
            if part.k != self.k or part.shape != shape:
                raise ValueError(f"'partitions' entry '{name}' has k={part.k} and shape "
                                 f"{part.shape}; layer '{name}' needs k={self.k} and shape "
                                 f"{shape}.")
            parts[name] = part
        # A plain list, so that nn.Module does not register the model's layers as ours.
        self._layers: list[tuple[str, nn.Module]] = [(n, modules[n]) for n in parts]
        self.partitions = parts
        # each layer's weight shape when the masks were built: checked at every call
        self._shapes = [tuple(m.weight.shape) for _, m in self._layers]
        for i, (name, module) in enumerate(self._layers):
            W, part = module.weight, parts[name].to(module.weight.device)
            # the labels of W's stored dims: a Conv1D stores (n_in, n_out)
            first, second = (part.cols, part.rows) if _is_conv1d(module) else (part.rows, part.cols)
            a = _one_hot(first, self.k, _sum_dtype(W.dtype))
            # no second factor when the second dim is k contiguous equal blocks: the fast path
            b = None if _equal_blocks(second, self.k) else _one_hot(second, self.k, a.dtype)
            self.register_buffer(f"mask_a{i}", a, persistent=False)
            self.register_buffer(f"mask_b{i}", b, persistent=False)

    @property
    def layer_names(self) -> list[str]:
        """Names of the clustered layers, in model order."""
        return [n for n, _ in self._layers]

    @property
    def layers(self) -> dict[str, nn.Module]:
        """``{name: module}`` of the clustered layers, in model order (the modules themselves)."""
        return dict(self._layers)

    def _mask(self, i: int, W: Tensor) -> tuple[Tensor, Tensor | None]:
        """The factors of layer i's mask, on W's device in its summing dtype (B None: blocks)."""
        dtype = _sum_dtype(W.dtype)
        out = []
        for side in "ab":
            factor = getattr(self, f"mask_{side}{i}")
            if factor is not None and (factor.device != W.device or factor.dtype != dtype):
                # the model moved or was cast: follow it once, keep the moved copy
                factor = factor.to(W.device, dtype)
                setattr(self, f"mask_{side}{i}", factor)
            out.append(factor)
        return out[0], out[1]

    def _check_shapes(self) -> None:
        for (name, m), shape in zip(self._layers, self._shapes, strict=True):
            weight = getattr(m, "weight", None)
            if not isinstance(weight, Tensor) or tuple(weight.shape) != shape:
                raise ValueError(f"Layer '{name}' has changed since the loss was built: its "
                                 f"weight was {shape}, now {describe(weight)}. Build a new "
                                 f"{type(self).__name__} for the changed model.")

    def _values(self) -> list[Tensor]:
        """Each layer's clusterability; row-sharded (DTensor) weights through summed shards.

        A plain weight gives its share directly. A sharded one gives the (inside, total) sums
        of its local rows; the sums of all sharded layers are then added up over the processes
        in one all-reduce per process group and dtype, and each layer's share is their ratio.
        """
        self._check_shapes()
        values: list[Tensor | None] = []
        sharded: dict[tuple, list[tuple[int, Tensor]]] = {}
        dtensor = _dtensor_type()
        for i, (name, m) in enumerate(self._layers):
            if dtensor is None or not isinstance(m.weight, dtensor):
                values.append(self._share(i, m.weight))
                continue
            local, start, groups = _row_shard(m.weight, name)
            sums = self._shard_sums(i, local, start)  # (2,): inside, total of these rows
            sharded.setdefault((groups, sums.dtype), []).append((i, sums))
            values.append(None)
        for (groups, _), items in sharded.items():  # the same order on every process
            summed = _SumOverShards.apply(torch.stack([s for _, s in items]), groups)
            for (i, _), (inside, total) in zip(items, summed, strict=True):
                values[i] = self._ratio(inside, total)
        return values

    def _share(self, i: int, W: Tensor) -> Tensor:
        """Layer i's clusterability from its whole weight W."""
        return _inside_share(W, *self._mask(i, W))

    def _shard_sums(self, i: int, local: Tensor, start: int) -> Tensor:
        """(inside, total) of layer i's rows ``start : start + len(local)``, held in ``local``."""
        a, b = self._mask(i, local)
        return _ShardSums.apply(local, a[start:start + len(local)], b)

    @staticmethod
    def _ratio(inside: Tensor, total: Tensor) -> Tensor:
        """inside / total, and 0 (gradient 0) for an all-zero layer, as :func:`_inside_share`."""
        return inside / torch.where(total != 0, total, torch.inf)

    def forward(self) -> Tensor:
        """``1 − mean clusterability`` over the layers: a differentiable scalar in [0, 1].

        Sums are taken in float32 (float64 for float64 weights), so the result is float32 for
        float16/bfloat16 models. An all-zero layer counts as clusterability 0, with gradient 0.
        With row-sharded weights (FSDP2) it is a collective: every process calls it.

        Raises:
            ValueError: a layer whose weight changed shape since the loss was built, or a
                DTensor weight sharded otherwise than by rows.
        """
        values = self._values()
        total = values[0] if len(values) == 1 else torch.stack(values).sum()
        return torch.rsub(total, 1, alpha=1 / len(values))  # 1 − total / n, in one op

    @torch.no_grad()
    def clusterability(self) -> dict[str, float]:
        """``{layer name: clusterability}`` under the fixed partitions.

        With row-sharded weights (FSDP2) it is a collective: every process calls it, and every
        process gets the same numbers.
        """
        return {n: float(v) for (n, _), v in zip(self._layers, self._values(), strict=True)}

    def extra_repr(self) -> str:
        return f"k={self.k}, layers={self.layer_names}"


class ScatteredMaskLoss(ClusterabilityLoss):
    """The clusterability loss with each layer's blocks scattered at random: sparsity, no modules.

    The control for "is it modularity or only sparsity?". Each layer's mask has exactly as many
    "inside" entries as its partition's block mask, at positions drawn at random (one
    permutation of the mask's entries, from ``seed``). Trained with the same λ, the penalty
    drives the same number of weights per layer to near zero as the clusterability loss does,
    but the survivors are scattered, so the layer is as sparse as a modular one and has no
    modules. Its :meth:`clusterability` is the share of squared mass inside the scattered mask;
    ``partitions`` are the block partitions it was drawn from. Under FSDP2 it sums sharded
    rows as :class:`ClusterabilityLoss` does. Introduced in notebook 04.

    Args:
        model, k, layers, partitions: as :class:`ClusterabilityLoss`.
        seed: seeds the positions of the scattered masks.

    Raises:
        TypeError, ValueError: as :class:`ClusterabilityLoss`; ``seed`` not an int.

    Example:
        >>> model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8), nn.Linear(8, 2))
        >>> loss = ScatteredMaskLoss(model, k=2, seed=0)
        >>> int(loss.masks["2"].sum()), int(loss.partitions["2"].mask().sum())  # same count
        (32, 32)
        >>> bool((loss.masks["2"] == loss.partitions["2"].mask()).all())  # other positions
        False
    """

    def __init__(self, model: nn.Module, k: int, *, layers: list[str] | None = None,
                 partitions: dict[str, Partition] | None = None, seed: int = 0) -> None:
        super().__init__(model, k, layers=layers, partitions=partitions)
        check_int(seed, "seed")
        gen = torch.Generator().manual_seed(seed)
        self.masks: dict[str, Tensor] = {}
        for i, (name, module) in enumerate(self._layers):
            block = self.partitions[name].mask().flatten()
            scattered = block[torch.randperm(block.numel(), generator=gen)]
            self.masks[name] = scattered.view(self.partitions[name].shape)
            # the mask in the weight's stored layout: (d0, d1) of a Linear, Conv2d or Conv1D
            d0, d1 = module.weight.shape[:2]
            stored = scattered.view(d0, d1).to(_sum_dtype(module.weight.dtype))
            self.register_buffer(f"scatter{i}", stored, persistent=False)

    def _scatter_sums(self, i: int, W: Tensor, start: int) -> tuple[Tensor, Tensor]:
        """(inside, total) of W, rows ``start : start + len(W)`` of layer i (all of them, or a
        shard), under the scattered mask."""
        mask = getattr(self, f"scatter{i}")
        dtype = _sum_dtype(W.dtype)
        if mask.device != W.device or mask.dtype != dtype:
            mask = mask.to(W.device, dtype)
            setattr(self, f"scatter{i}", mask)
        W2 = W.to(dtype).square()
        if W2.dim() > 2:  # a conv kernel: each slice is one edge
            W2 = W2.flatten(2).sum(-1)
        return (W2 * mask[start:start + len(W)]).sum(), W2.sum()

    def _share(self, i: int, W: Tensor) -> Tensor:
        return self._ratio(*self._scatter_sums(i, W, 0))

    def _shard_sums(self, i: int, local: Tensor, start: int) -> Tensor:
        return torch.stack(self._scatter_sums(i, local, start))

    @staticmethod
    def _ratio(inside: Tensor, total: Tensor) -> Tensor:
        return inside / total.clamp_min(torch.finfo(total.dtype).tiny)


def _sum_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 for float64 weights, float32 for all others (float16 sums overflow at 65504)."""
    return torch.float64 if dtype == torch.float64 else torch.float32
