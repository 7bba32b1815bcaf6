"""Forward hooks, activation capture, masking and replay: the one home for running a model with
something changed inside it. Depends on torch only; every part of modlib may import it.

Every function here is a context manager (or runs one forward pass) that changes a model only
inside its ``with`` block and undoes the change on the way out, even when the block raises:

- :func:`eval_mode`: eval mode inside, each module's own mode restored after.
- :func:`forward_hooks`: register forward (or pre-forward) hooks, remove them after.
- :func:`record`, :func:`capture` and :func:`capture_once`: the outputs (and inputs) of named
  modules.
- :func:`zero_outputs`: zero chosen output units (neurons, channels) of modules.
- :func:`masked_weights`: zero chosen weights of modules, restore them after.
- :func:`replace_forward`: a module computes something else (e.g. a stored output).
- :func:`frozen_prefix`: the modules that run before a cut replay their outputs instead of
  running again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence

import torch
from torch import Tensor, nn

from .validate import (
    check_bool,
    check_callable,
    check_layer_names,
    check_mapping,
    check_module,
    check_tensor,
    describe,
)

__all__ = ["Call", "capture", "capture_once", "eval_mode", "forward_hooks", "frozen_prefix",
           "masked_weights", "record", "replace_forward", "zero_outputs"]

Call = tuple[Tensor, object]  # (a module's first positional input, its output) in one call

_CONV_DIMS = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}  # spatial dims after the channels


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` (and every sub-module) in eval mode; restore each module's own mode after.

    Restores even when the body raises, and keeps a mixed state (for example a frozen, eval-mode
    sub-module inside a model being trained) as it was.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.Dropout())
        >>> with eval_mode(net):
        ...     net.training
        False
        >>> net.training
        True
    """
    check_module(model)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, mode in modes:
            m.training = mode


def _check_modules(modules: object, name: str = "modules") -> Mapping[str, nn.Module]:
    if not isinstance(modules, Mapping):
        raise TypeError(f"'{name}' must be a dict {{name: nn.Module}}. Got {describe(modules)}.")
    for key, module in modules.items():
        check_module(module, f"{name}[{key!r}]")
    return modules


@contextlib.contextmanager
def forward_hooks(modules: Mapping[str, nn.Module],
                  make_hook: Callable[[str, nn.Module], Callable[..., object]], *,
                  pre: bool = False) -> Iterator[None]:
    """Hold a forward hook on each of ``modules`` inside the block; remove them all after.

    Args:
        modules: ``{name: module}``, e.g. from ``dict(model.named_modules())``.
        make_hook: ``make_hook(name, module)`` returns the hook for that module: called as
            ``hook(module, inputs, output)`` after its forward (a return value other than None
            replaces the output) or, with ``pre``, as ``hook(module, inputs)`` before it.
        pre: register pre-forward hooks instead.

    Raises:
        TypeError: ``modules`` is not a dict of modules, or ``pre`` is not a bool.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
        >>> seen = []
        >>> with forward_hooks({"0": net[0]}, lambda n, m: lambda mod, i, o: seen.append(n)):
        ...     _ = net(torch.zeros(1, 2))
        >>> _ = net(torch.zeros(1, 2))  # the hook is gone
        >>> seen
        ['0']
    """
    _check_modules(modules)
    check_callable(make_hook, "make_hook")
    check_bool(pre, "pre")
    handles = []
    try:
        for name, module in modules.items():
            hook = make_hook(name, module)
            handles.append(module.register_forward_pre_hook(hook) if pre
                           else module.register_forward_hook(hook))
        yield
    finally:
        for h in handles:
            h.remove()


def _named(model: nn.Module, names: Sequence[str] | str) -> dict[str, nn.Module]:
    known = {n: m for n, m in check_module(model).named_modules() if n}
    names = check_layer_names([names] if isinstance(names, str) else names, known, "names",
                              allow_empty=True)
    return {n: known[n] for n in names}


@contextlib.contextmanager
def record(model: nn.Module, names: Sequence[str] | str, *, detach: bool = True
           ) -> Iterator[dict[str, Tensor]]:
    """Record the outputs of named modules during the forward passes inside the block.

    ``names`` are module names as in ``model.named_modules()`` (or one name); ``detach=False``
    keeps the outputs' graph, for gradients.

    Yields:
        ``{name: output of the last forward pass}``, e.g. ``(B, n_out)`` for a Linear.

    Raises:
        ValueError: a name that is not a module of ``model`` (the message lists the known ones).
        TypeError: ``model`` is not a module, or ``names`` not a list of str.

    Example:
        >>> model = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
        >>> with record(model, ["0"]) as acts:
        ...     _ = model(torch.zeros(2, 3))
        >>> acts["0"].shape
        torch.Size([2, 4])

    Introduced in notebook 04.
    """
    modules = _named(model, names)
    check_bool(detach, "detach")
    acts: dict[str, Tensor] = {}

    def make_hook(name: str, module: nn.Module) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: object, output: Tensor) -> None:
            acts[name] = output.detach() if detach else output
        return hook

    with forward_hooks(modules, make_hook):
        yield acts


@contextlib.contextmanager
def capture(modules: Mapping[str, nn.Module]) -> Iterator[dict[str, list[Call]]]:
    """Every call of each module inside the block: its first positional input and its output.

    Nothing is detached, so gradients can flow back to the captured tensors.

    Yields:
        ``{name: [(input, output), ...]}``, one pair per call, in call order.

    Raises:
        TypeError: ``modules`` is not a dict of modules.

    Example:
        >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
        >>> with capture({"fc": net[0]}) as seen:
        ...     _ = net(torch.zeros(2, 3))
        >>> [(tuple(x.shape), tuple(y.shape)) for x, y in seen["fc"]]
        [((2, 3), (2, 4))]
    """
    seen: dict[str, list[Call]] = {n: [] for n in _check_modules(modules)}

    def make_hook(name: str, module: nn.Module) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple, output: object) -> None:
            seen[name].append((args[0] if args else None, output))
        return hook

    with forward_hooks(modules, make_hook):
        yield seen


def capture_once(model: nn.Module, modules: Mapping[str, nn.Module], *args: object
                 ) -> tuple[object, dict[str, Call]]:
    """Run ``model(*args)`` once and capture the one call of each of ``modules``.

    Returns:
        ``(model output, {name: (input, output)})``.

    Raises:
        TypeError: ``model`` not a module, ``modules`` not a dict of modules, no ``args``.
        ValueError: a module that ran other than exactly once (shared weights, or not on the
            path of the forward pass).

    Example:
        >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> out, calls = capture_once(net, {"2": net[2]}, torch.zeros(5, 3))
        >>> tuple(calls["2"][0].shape), torch.equal(calls["2"][1], out)
        ((5, 4), True)
    """
    check_module(model)
    _check_modules(modules)
    if not args:
        raise TypeError("'args' is empty: pass the model's inputs, as capture_once(model, "
                        "modules, X).")
    with capture(modules) as seen:
        out = model(*args)
    for name, calls in seen.items():
        if len(calls) != 1:
            raise ValueError(f"Layer '{name}' ran {len(calls)} times in one forward pass; "
                             f"'layers' must name layers that run exactly once "
                             f"(no shared weights).")
    return out, {n: calls[0] for n, calls in seen.items()}


@contextlib.contextmanager
def zero_outputs(modules: Mapping[str, nn.Module], units: Mapping[str, Tensor]
                 ) -> Iterator[None]:
    """Zero chosen output units of modules in every forward pass inside the block.

    A unit is a column of the last axis (a Linear's output neuron, ``(B, n_out)`` or
    ``(B, T, n_out)``) or, for ``nn.Conv1d``/``Conv2d``/``Conv3d``, a channel (axis 1 of
    ``(B, C, ...)``). Later layers' biases still act.

    Args:
        modules: ``{name: module}``.
        units: ``{name: (n_out,) bool}``, True for the units to zero; one entry per module.

    Raises:
        TypeError: ``modules`` is not a dict of modules, or a mask is not a bool tensor.
        ValueError: ``units`` does not name the same modules, or a mask is not 1-D.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 3))
        >>> with zero_outputs({"0": net[0]}, {"0": torch.tensor([True, False, True])}):
        ...     out = net(torch.ones(1, 2))
        >>> out[0, 0].item(), out[0, 2].item()
        (0.0, 0.0)
    """
    _check_modules(modules)
    check_mapping(units, "units", "{name: bool mask}", nonempty=False)
    if set(units) != set(modules):
        raise ValueError(f"'units' must be a dict with one mask per module of 'modules' "
                         f"{list(modules)}. Got {describe(units)}.")
    for name, mask in units.items():
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
            raise TypeError(f"'units[{name!r}]' must be a bool tensor. Got {describe(mask)}.")
        if mask.ndim != 1:
            raise ValueError(f"'units[{name!r}]' must be 1-D (n_out,). "
                             f"Got shape {tuple(mask.shape)}.")
        n_out = getattr(modules[name], "out_features", getattr(modules[name], "out_channels", None))
        if isinstance(n_out, int) and mask.numel() != n_out:
            raise ValueError(f"'units[{name!r}]' must have one entry per output unit of the "
                             f"module ({n_out}). Got {mask.numel()}.")

    def make_hook(name: str, module: nn.Module) -> Callable[..., Tensor]:
        spatial = next((d for cls, d in _CONV_DIMS.items() if isinstance(module, cls)), 0)
        mask = units[name].view(-1, *[1] * spatial)  # conv: (C, 1, ..., 1)

        def hook(module: nn.Module, inputs: object, output: Tensor) -> Tensor:
            return output.masked_fill(mask.to(output.device), 0)
        return hook

    with forward_hooks(modules, make_hook):
        yield


@contextlib.contextmanager
def masked_weights(modules: Mapping[str, nn.Module], keep: Mapping[str, Tensor]
                   ) -> Iterator[None]:
    """Zero each module's ``weight`` where ``keep`` is False inside the block; restore it after.

    The weights are changed in place (no graph, no copy of the model) and restored from a copy
    on the way out, even when the block raises.

    Args:
        modules: ``{name: module with a .weight}``.
        keep: ``{name: bool tensor of the weight's shape}`` for some or all of ``modules``.

    Raises:
        TypeError: ``modules`` is not a dict of modules.
        ValueError: a name of ``keep`` not in ``modules``, or a mask of another shape.

    Example:
        >>> fc = nn.Linear(2, 2, bias=False)
        >>> before = fc.weight.detach().clone()
        >>> with masked_weights({"fc": fc}, {"fc": torch.tensor([[True, False], [False, True]])}):
        ...     fc.weight[0, 1].item() == 0, fc.weight[0, 0].item() == before[0, 0].item()
        (True, True)
        >>> torch.equal(fc.weight, before)
        True
    """
    _check_modules(modules)
    check_mapping(keep, "keep", "{name: bool mask of the weight's shape}", nonempty=False)
    for name, mask in keep.items():
        if name not in modules:
            raise ValueError(f"'keep' names modules that are not in 'modules': {name!r}. "
                             f"Known: {list(modules)}.")
        weight = getattr(modules[name], "weight", None)
        if not isinstance(weight, Tensor):
            raise ValueError(f"'modules[{name!r}]' must have a weight tensor. "
                             f"Got {describe(weight)}.")
        shape = tuple(weight.shape)
        check_tensor(mask, f"keep[{name!r}]", kind="bool")
        if tuple(mask.shape) != shape:
            raise ValueError(f"'keep[{name!r}]' must be a mask of the weight's shape {shape}. "
                             f"Got {describe(mask)}.")
    saved = {n: modules[n].weight.detach().clone() for n in keep}
    try:
        with torch.no_grad():
            for n, mask in keep.items():
                modules[n].weight.mul_(mask.to(modules[n].weight))
        yield
    finally:
        with torch.no_grad():
            for n, w in saved.items():
                modules[n].weight.copy_(w)


@contextlib.contextmanager
def replace_forward(module: nn.Module, forward: Callable[..., object]) -> Iterator[None]:
    """Inside the block, calling ``module`` runs ``forward`` instead of its own forward.

    Hooks on the module still run. Use it to hand later layers a stored or incrementally
    updated output without computing the module again.

    Raises:
        TypeError: ``module`` is not a module, or ``forward`` is not callable.

    Example:
        >>> fc = nn.Linear(2, 2)
        >>> with replace_forward(fc, lambda x: torch.zeros(len(x), 2)):
        ...     fc(torch.ones(3, 2)).abs().sum().item()
        0.0
        >>> "forward" in vars(fc)  # its own forward is back
        False
    """
    check_module(module, "module")
    if not callable(forward):
        raise TypeError(f"'forward' must be callable. Got {describe(forward)}.")
    saved = module.__dict__.get("forward")  # an instance attribute set by someone else
    module.forward = forward  # shadows the class's forward
    try:
        yield
    finally:
        module.__dict__.pop("forward", None)
        if saved is not None:
            module.forward = saved


@contextlib.contextmanager
def frozen_prefix(model: nn.Module, first: Sequence[nn.Module], X: Tensor) -> Iterator[None]:
    """Inside the block, leaf modules replay what they computed on ``X`` before any of
    ``first`` ran, instead of computing it again.

    Nothing that runs before a module in a forward pass can depend on that module's weights or
    on anything after it; so while only ``first`` and later modules change, the earlier outputs
    are fixed. Pruning and circuit searches call the model hundreds of times; replaying the
    early layers (e.g. a CNN's convolutions) makes each call cost only the layers from ``first``
    on. A module that also runs later (a shared ReLU) replays its early calls and computes the
    later ones. The model must be called on ``X`` only, in eval mode, with a forward that takes
    the same path every time; a replayed output changed in place downstream is restored from a
    stored copy before it is replayed again.

    Args:
        model: the model, called as ``model(X)`` inside the block.
        first: the modules where the replay stops (the first of them to run is the cut).
        X: the one input the model will see inside the block.

    Raises:
        TypeError: ``model`` or an entry of ``first`` is not a module.

    Example:
        >>> net = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2)).eval()
        >>> X = torch.randn(4, 3)
        >>> with frozen_prefix(net, [net[2]], X):
        ...     torch.equal(net(X), net[2](net[1](net[0](X))))
        True
    """
    check_module(model)
    if isinstance(first, nn.Module) or not isinstance(first, Sequence) or not first:
        raise TypeError(f"'first' must be a non-empty list of modules. Got {describe(first)}.")
    for m in first:
        check_module(m, "first")
    check_tensor(X, "X")
    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    calls: list[tuple[nn.Module, object]] = []

    def make_hook(name: str, module: nn.Module) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: object, output: object) -> None:
            calls.append((module, output.detach().clone() if isinstance(output, Tensor)
                          else output))
        return hook

    with forward_hooks({str(i): m for i, m in enumerate(leaves)}, make_hook), torch.no_grad():
        model(X)
    ids = {id(m) for m in first}
    cut = next((i for i, (m, _) in enumerate(calls) if id(m) in ids), len(calls))
    early: dict[int, tuple[nn.Module, list]] = {}
    for m, out in calls[:cut]:
        early.setdefault(id(m), (m, []))[1].append(out)
    early = {i: v for i, v in early.items() if all(isinstance(o, Tensor) for o in v[1])}
    counts = dict.fromkeys(early, 0)  # calls of each module in the current forward pass

    def make_forward(m: nn.Module, outs: list[Tensor]) -> Callable[..., object]:
        compute, key = m.forward, id(m)
        replayed = [o.clone() for o in outs]  # handed out; `outs` stays pristine
        versions = [o._version for o in replayed]

        def forward(*args: object, **kwargs: object) -> object:
            i = counts[key]
            counts[key] += 1
            if i >= len(outs):
                return compute(*args, **kwargs)  # a call after the cut: compute it
            if replayed[i]._version != versions[i]:  # modified in place since: restore
                replayed[i] = outs[i].clone()
                versions[i] = replayed[i]._version
            return replayed[i]
        return forward

    def reset(module: nn.Module, args: object) -> None:
        for key in counts:
            counts[key] = 0

    with contextlib.ExitStack() as stack:
        stack.enter_context(forward_hooks({"": model}, lambda n, m: reset, pre=True))
        for m, outs in early.values():
            stack.enter_context(replace_forward(m, make_forward(m, outs)))
        yield
