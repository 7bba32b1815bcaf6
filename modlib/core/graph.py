"""A layer as a bipartite weight graph, and the choice of a model's layers to cluster.

Rows of the weight matrix are output neurons, columns are input neurons, and the edge between
output i and input j has weight |W_ij| (Filan et al. 2021; Golechha et al. 2025). For a Conv2d the
edge from input channel j to output channel i is the whole kernel slice ``W[i, j]``, weighted by
its L2 norm. Introduced in notebook 01 (weights as graphs) and notebook 02 (pretrained CNNs).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..validate import check_int, check_layer_names, check_module
from .partition import Partition, contiguous_partition

__all__ = ["layer_matrix", "weight_layers", "default_layers", "aligned_partitions"]

_SUPPORTED = "nn.Linear, nn.Conv2d (groups=1), transformers Conv1D"


def _is_conv1d(module: nn.Module) -> bool:
    # Hugging Face's GPT-2 Conv1D: a Linear whose weight is stored (n_in, n_out). Matched by
    # name and attributes so that modlib does not import transformers; by the class's bases too,
    # since FSDP2's fully_shard turns a Conv1D into an "FSDPConv1D" that subclasses it.
    return (any(c.__name__ == "Conv1D" for c in type(module).__mro__)
            and hasattr(module, "nf") and hasattr(module, "weight"))


def is_weight_layer(module: nn.Module) -> bool:
    """True for the module types that have a weight graph (see :func:`layer_matrix`)."""
    if isinstance(module, nn.Conv2d):
        return module.groups == 1
    return isinstance(module, nn.Linear) or _is_conv1d(module)


def squared_matrix(module: nn.Module) -> Tensor:
    """(n_out, n_in) squared edge weights W_ij² of a layer, differentiable.

    This is what clusterability and the loss use: for a Conv2d it is the kernel slice's sum of
    squares, with no square root, so its gradient stays finite for an all-zero slice.

    Raises:
        TypeError: for a module without a weight graph.
    """
    if isinstance(module, nn.Conv2d) and module.groups == 1:
        return module.weight.square().sum(dim=(2, 3))  # (out, in, kh, kw) -> (out, in)
    if isinstance(module, nn.Linear):
        return module.weight.square()
    if _is_conv1d(module):
        return module.weight.square().T  # stored (n_in, n_out)
    raise _unsupported(module)


def _unsupported(module: nn.Module) -> TypeError:
    return TypeError(f"No weight graph for module of type {type(module).__name__}"
                     f"{' with groups > 1' if isinstance(module, nn.Conv2d) else ''}. "
                     f"Supported: {_SUPPORTED}.")


def layer_matrix(module: nn.Module) -> Tensor:
    """The (n_out, n_in) weight matrix of a layer's bipartite graph, keeping gradients.

    - ``nn.Linear``: its weight.
    - ``nn.Conv2d``: the L2 norm of each kernel slice ``W[i, j]`` (non-negative).
    - Hugging Face ``Conv1D`` (GPT-2): its weight transposed, since it is stored (n_in, n_out).

    Args:
        module: the layer.

    Returns:
        W: (n_out, n_in), on the module's device and dtype.

    Raises:
        TypeError: for any other module type (the message lists the supported ones).

    Example:
        >>> layer_matrix(nn.Conv2d(3, 8, 5)).shape
        torch.Size([8, 3])

    Introduced in notebook 01.
    """
    check_module(module, "module")
    if isinstance(module, nn.Linear):
        return module.weight
    if _is_conv1d(module):
        return module.weight.T
    if isinstance(module, nn.Conv2d) and module.groups == 1:
        # vector_norm's gradient is 0 at an all-zero slice, where sqrt(sum of squares) gives inf
        return torch.linalg.vector_norm(module.weight, dim=(2, 3))
    raise _unsupported(module)


def _shape(module: nn.Module) -> tuple[int, int]:
    out, inp = squared_matrix(module).shape
    return int(out), int(inp)


def weight_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Every module of ``model`` with a weight graph, by name, in registration order.

    Example:
        >>> list(weight_layers(nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))))
        ['0', '2']
    """
    check_module(model)
    return {name: m for name, m in model.named_modules() if is_weight_layer(m)}


def default_layers(model: nn.Module, k: int) -> list[str]:
    """Names of the layers clustered by default.

    Every Linear / Conv2d / Conv1D whose both sides have at least ``k`` neurons, except the
    first and the last such layer (the input pixels and the output classes have no modules).

    Raises:
        TypeError: ``model`` not a module, ``k`` not an int.
        ValueError: ``k < 1``, or if that leaves no layer.
    """
    check_module(model)
    k = check_int(k, "k", minimum=1)
    names = [n for n, m in weight_layers(model).items() if min(_shape(m)) >= k]
    chosen = names[1:-1]
    if not chosen:
        raise ValueError(f"No layer to cluster at k={k}: the model has {len(names)} layer(s) "
                         f"with both sides >= k ({names}), and the first and last are left out. "
                         f"Pass 'layers' explicitly.")
    return chosen


def aligned_partitions(model: nn.Module, k: int, layers: list[str] | None = None
                       ) -> dict[str, Partition]:
    """Contiguous equal blocks for each chosen layer, aligned along the model.

    Output block c of a layer feeds input block c of the next weight layer. When a Linear takes
    a flattened Conv2d output (n_in a multiple of the conv's channels), its columns are grouped
    by channel so that each channel's whole feature map stays in the channel's cluster.

    Args:
        model: the network.
        k: number of clusters.
        layers: module names; default :func:`default_layers`.

    Returns:
        ``{name: Partition}`` in model order.

    Raises:
        TypeError: ``model`` not a module, ``k`` not an int, ``layers`` not a list of str.
        ValueError: unknown or no names, or k < 1 or larger than a side of a chosen layer.
    """
    all_layers = weight_layers(model)
    k = check_int(k, "k", minimum=1)
    if layers is None:
        names = default_layers(model, k)
    else:  # a list of str, at least one, each a Linear/Conv2d/Conv1D module of the model
        names = check_layer_names(layers, (), "layers", check_known=False)
        unknown = [n for n in names if n not in all_layers]
        if unknown:
            raise ValueError(f"'layers' has names that are not Linear/Conv2d/Conv1D modules of "
                             f"the model: {unknown}. Known: {list(all_layers)}.")
    order = list(all_layers)
    parts: dict[str, Partition] = {}
    for name in sorted(names, key=order.index):
        n_out, n_in = _shape(all_layers[name])
        if k > min(n_out, n_in):
            raise ValueError(f"'k'={k} is larger than a side of layer '{name}' "
                             f"(shape {(n_out, n_in)}).")
        i = order.index(name)
        prev = all_layers[order[i - 1]] if i > 0 else None
        groups = None
        if isinstance(prev, nn.Conv2d) and n_in != prev.out_channels \
                and n_in % prev.out_channels == 0 and prev.out_channels >= k:
            groups = prev.out_channels
        parts[name] = contiguous_partition(n_out, n_in, k, in_groups=groups)
    return parts
