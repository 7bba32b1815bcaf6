"""The clusterability loss: 1 − mean clusterability over chosen layers, with clusters fixed.

Training minimises ``L_task + lam * ClusterabilityLoss(model, k)()`` (Golechha et al. 2025).
The partition of every layer is fixed before training: contiguous equal blocks aligned along the
model (training from scratch), or a spectral partition of a pretrained model (fine-tuning).
Introduced in notebook 03 (training for modularity).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .graph import aligned_partitions, squared_matrix, weight_layers
from .metrics import _inside_share
from .partition import Partition, _check_k

__all__ = ["ClusterabilityLoss"]


class ClusterabilityLoss(nn.Module):
    """``1 − mean clusterability`` of a model's chosen layers, differentiable in their weights.

    The module holds only the cluster masks (as non-persistent buffers, computed once), not
    the model's parameters: ``loss.parameters()`` is empty and ``loss.state_dict()`` adds
    nothing to a checkpoint. Masks follow the weights' device at every call.

    Args:
        model: the network whose layers are clustered.
        k: number of clusters per layer.
        layers: module names of Linear / Conv2d / Conv1D layers; default
            :func:`modlib.graph.default_layers` (every such layer with both sides >= k but the
            first and last).
        partitions: ``{name: Partition}``, e.g. from :func:`modlib.spectral_cocluster` of a
            pretrained model; layers not in it get contiguous aligned blocks
            (:func:`modlib.graph.aligned_partitions`). Its names are clustered even when
            ``layers`` does not list them.

    Raises:
        TypeError: ``model`` not an ``nn.Module``, ``k`` not an int.
        ValueError: unknown layer names, ``k`` larger than a side of a chosen layer, or a
            partition whose k or shape does not fit its layer.

    Example:
        >>> model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8), nn.Linear(8, 2))
        >>> loss = ClusterabilityLoss(model, k=2)
        >>> list(loss.clusterability())
        ['2']
        >>> 0 <= float(loss().detach()) <= 1
        True

    Introduced in notebook 03.
    """

    def __init__(self, model: nn.Module, k: int, *, layers: list[str] | None = None,
                 partitions: dict[str, Partition] | None = None) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"'model' must be an nn.Module. Got {type(model).__name__}.")
        self.k = _check_k(k)
        partitions = dict(partitions or {})
        names = list(layers) if layers is not None else None
        if names is not None:
            names += [n for n in partitions if n not in names]
        elif partitions:
            names = list(partitions)
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
        for i, (name, _) in enumerate(self._layers):
            device = squared_matrix(modules[name]).device
            self.register_buffer(f"mask{i}", parts[name].to(device).mask(), persistent=False)

    @property
    def layer_names(self) -> list[str]:
        """Names of the clustered layers, in model order."""
        return [n for n, _ in self._layers]

    def _mask(self, i: int, device: torch.device) -> Tensor:
        mask = getattr(self, f"mask{i}")
        if mask.device != device:  # the model moved: follow it once, keep the moved copy
            mask = mask.to(device)
            setattr(self, f"mask{i}", mask)
        return mask

    def _values(self) -> list[Tensor]:
        out = []
        for i, (_, module) in enumerate(self._layers):
            W2 = squared_matrix(module)
            out.append(_inside_share(W2, self._mask(i, W2.device)))
        return out

    def forward(self) -> Tensor:
        """``1 − mean clusterability`` over the layers: a differentiable scalar in [0, 1]."""
        return 1 - torch.stack(self._values()).mean()

    @torch.no_grad()
    def clusterability(self) -> dict[str, float]:
        """``{layer name: clusterability}`` under the fixed partitions."""
        return {n: float(v) for (n, _), v in zip(self._layers, self._values(), strict=True)}

    def extra_repr(self) -> str:
        return f"k={self.k}, layers={self.layer_names}"
