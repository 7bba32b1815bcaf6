"""Argument checks shared by every part of modlib: one home, one wording.

Each check returns the value it accepted (converted where that is safe, e.g. an int-like numpy
integer to ``int``) and otherwise raises a :class:`TypeError` (wrong kind of value) or a
:class:`ValueError` (right kind, wrong value) whose message names the argument, says what is
expected and shows what was received::

    'k' must be an int >= 1. Got 0.
    'lr' must be a finite real > 0. Got nan.
    'W' must be a torch.Tensor. Got list [[1, 2]].

Public functions call these before they do any work, so bad input never surfaces as an error from
deep inside torch. This module depends on torch only; every part of modlib may import it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection, Iterable, Mapping
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

__all__ = [
    "describe", "check_int", "check_real", "check_bool", "check_choice", "check_matrix",
    "check_total", "check_data", "check_module", "check_layer_names", "check_instance",
    "check_tensor", "check_callable", "check_mapping", "model_device",
]

T = TypeVar("T")


def describe(value: object, limit: int = 60) -> str:
    """A short, reproducible description of ``value`` for an error message.

    Tensors are described by dtype and shape (and their values when small); everything else by its
    type and a repr cut to ``limit`` characters.

    Example:
        >>> describe(2.5)
        'float 2.5'
        >>> describe(torch.zeros(2, 3))
        'Tensor of dtype torch.float32 and shape (2, 3)'
        >>> describe(None)
        'None'
    """
    if value is None:
        return "None"
    if isinstance(value, bool):
        return f"bool {value!r}"
    if isinstance(value, Tensor):
        return f"Tensor of dtype {value.dtype} and shape {tuple(value.shape)}"
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    if isinstance(value, int):  # plain ints read as themselves: "Got 0."
        return text
    return f"{type(value).__name__} {text}"


def _bounds(minimum: object, maximum: object, low_open: bool, high_open: bool) -> str:
    parts = []
    if minimum is not None:
        parts.append(f"{'>' if low_open else '>='} {minimum}")
    if maximum is not None:
        parts.append(f"{'<' if high_open else '<='} {maximum}")
    return " and ".join(parts)


def check_int(value: object, name: str, *, minimum: int | None = None,
              maximum: int | None = None, none_ok: bool = False) -> Any:
    """``value`` as an ``int`` within ``[minimum, maximum]`` (``None`` too when ``none_ok``).

    Booleans are refused (``True`` is not a count); numpy integers are accepted.

    Example:
        >>> check_int(3, "k", minimum=1)
        3
        >>> check_int(0, "k", minimum=1)
        Traceback (most recent call last):
        ...
        ValueError: 'k' must be an int >= 1. Got 0.
    """
    if value is None and none_ok:
        return None
    bounds = _bounds(minimum, maximum, False, False)
    what = "an int" + (f" {bounds}" if bounds else "") + (" or None" if none_ok else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"'{name}' must be {what}. Got {describe(value)}.")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"'{name}' must be {what}. Got {value}.")
    return value


def check_real(value: object, name: str, *, minimum: float | None = None,
               maximum: float | None = None, low_open: bool = False, high_open: bool = False,
               none_ok: bool = False) -> Any:
    """``value`` as a finite ``float`` within the given bounds (``None`` too when ``none_ok``).

    ``low_open`` / ``high_open`` exclude the bound itself. NaN and ±inf are always refused.

    Example:
        >>> check_real(0.5, "keep", minimum=0, maximum=1, low_open=True)
        0.5
        >>> check_real(float("nan"), "lr", minimum=0, low_open=True)
        Traceback (most recent call last):
        ...
        ValueError: 'lr' must be a finite real > 0. Got nan.
    """
    if value is None and none_ok:
        return None
    bounds = _bounds(minimum, maximum, low_open, high_open)
    what = "a finite real" + (f" {bounds}" if bounds else "") + (" or None" if none_ok else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"'{name}' must be {what}. Got {describe(value)}.")
    value = float(value)
    bad = not math.isfinite(value)
    if minimum is not None:
        bad = bad or value < minimum or (low_open and value == minimum)
    if maximum is not None:
        bad = bad or value > maximum or (high_open and value == maximum)
    if bad:
        raise ValueError(f"'{name}' must be {what}. Got {value!r}.")
    return value


def check_bool(value: object, name: str) -> bool:
    """``value`` if it is a ``bool`` (not merely truthy).

    Example:
        >>> check_bool("yes", "progress")
        Traceback (most recent call last):
        ...
        TypeError: 'progress' must be True or False. Got str 'yes'.
    """
    if not isinstance(value, bool):
        raise TypeError(f"'{name}' must be True or False. Got {describe(value)}.")
    return value


def check_choice(value: T, name: str, choices: Iterable[object]) -> T:
    """``value`` if it is one of ``choices``.

    Example:
        >>> check_choice("mnistt", "name", ("mnist", "cifar"))
        Traceback (most recent call last):
        ...
        ValueError: 'name' must be one of ('mnist', 'cifar'). Got 'mnistt'.
    """
    options = tuple(choices)
    try:
        ok = value in options
    except TypeError:  # an unhashable value against a set of choices
        ok = False
    if not ok:
        raise ValueError(f"'{name}' must be one of {options}. Got {value!r}.")
    return value


def check_matrix(W: object, name: str = "W") -> Tensor:
    """``W`` if it is a non-empty 2-D floating-point tensor (cheap: no pass over its values).

    Example:
        >>> check_matrix(torch.ones(3))
        Traceback (most recent call last):
        ...
        ValueError: 'W' must be 2-D (n_out, n_in). Got shape (3,); use modlib.layer_matrix(module) for a layer.
    """  # noqa: E501
    if not isinstance(W, Tensor):
        raise TypeError(f"'{name}' must be a torch.Tensor. Got {describe(W)}.")
    if not W.dtype.is_floating_point:
        raise TypeError(f"'{name}' must be a floating-point tensor. Got dtype {W.dtype}.")
    if W.ndim != 2:
        raise ValueError(f"'{name}' must be 2-D (n_out, n_in). Got shape {tuple(W.shape)}; "
                         f"use modlib.layer_matrix(module) for a layer.")
    if W.numel() == 0:
        raise ValueError(f"'{name}' is empty (shape {tuple(W.shape)}).")
    return W


def check_total(W: Tensor, total: Tensor, name: str = "W") -> None:
    """Refuse NaN/Inf or all-zero weights, given a sum of ``|W|`` or ``W²`` computed anyway.

    One check of a scalar instead of extra passes over W: the total is finite and positive
    exactly when W is finite and not all zero (barring overflow, reported as such).
    """
    t = float(total.detach())
    if math.isfinite(t) and t > 0:
        return
    shape = tuple(W.shape)
    bad = int((~torch.isfinite(W.detach())).sum())
    if bad:
        raise ValueError(f"'{name}' of shape {shape} has {bad} NaN/Inf entries.")
    if t == 0:
        raise ValueError(f"'{name}' of shape {shape} is all zeros: clusterability is undefined.")
    raise ValueError(f"'{name}' of shape {shape} overflows {W.dtype} when summed; "
                     f"rescale it or use float64.")


def check_data(X: object, y: object, *, names: tuple[str, str] = ("X", "y"),
               labels: bool = True) -> tuple[Tensor, Tensor]:
    """A batch ``(X, y)``: tensors with the same (non-zero) number of samples.

    With ``labels`` (the default), ``y`` must be a 1-D integer tensor of class labels; otherwise
    any tensor whose first dimension matches.

    Example:
        >>> X, y = check_data(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long))
        >>> check_data(torch.zeros(4, 2), torch.zeros(3, dtype=torch.long))
        Traceback (most recent call last):
        ...
        ValueError: 'X' and 'y' must hold the same number of samples. Got 4 and 3.
    """
    nx, ny = names
    for value, name in ((X, nx), (y, ny)):
        if not isinstance(value, Tensor):
            raise TypeError(f"'{name}' must be a torch.Tensor. Got {describe(value)}.")
    assert isinstance(X, Tensor) and isinstance(y, Tensor)
    if X.ndim == 0 or X.shape[0] == 0:
        raise ValueError(f"'{nx}' holds no samples. Got shape {tuple(X.shape)}.")
    if labels:
        if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
            raise TypeError(f"'{ny}' must hold integer class labels. Got dtype {y.dtype}.")
        if y.ndim != 1:
            raise ValueError(f"'{ny}' must be 1-D (one label per sample). "
                             f"Got shape {tuple(y.shape)}.")
    if y.ndim == 0 or y.shape[0] != X.shape[0]:
        got = y.shape[0] if y.ndim else "a scalar"
        raise ValueError(f"'{nx}' and '{ny}' must hold the same number of samples. "
                         f"Got {X.shape[0]} and {got}.")
    return X, y


def check_module(model: object, name: str = "model") -> nn.Module:
    """``model`` if it is a ``torch.nn.Module``.

    Example:
        >>> check_module("resnet")
        Traceback (most recent call last):
        ...
        TypeError: 'model' must be a torch.nn.Module. Got str 'resnet'.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"'{name}' must be a torch.nn.Module. Got {describe(model)}.")
    return model


def check_layer_names(names: object, known: Mapping[str, object] | Collection[str],
                      name: str = "layers", *, allow_empty: bool = False,
                      check_known: bool = True) -> list[str]:
    """``names`` as a list of strings, each one of ``known`` (a layer name of the model).

    With ``check_known=False`` only the type and emptiness are checked (the caller words the
    message for unknown names itself).

    Example:
        >>> check_layer_names(["fc1"], {"fc1": None, "fc2": None})
        ['fc1']
        >>> check_layer_names(["fc3"], {"fc1": None, "fc2": None})
        Traceback (most recent call last):
        ...
        ValueError: 'layers' names layers that are not in the model: ['fc3']. Known: ['fc1', 'fc2'].
    """
    if isinstance(names, str) or not isinstance(names, Iterable):
        raise TypeError(f"'{name}' must be a list of layer names. Got {describe(names)}.")
    names = list(names)
    odd = [n for n in names if not isinstance(n, str)]
    if odd:
        raise TypeError(f"'{name}' must hold layer names (str). Got {describe(odd[0])}.")
    if not names and not allow_empty:
        raise ValueError(f"'{name}' is empty: name at least one layer.")
    unknown = [n for n in names if n not in known] if check_known else []
    if unknown:
        raise ValueError(f"'{name}' names layers that are not in the model: {unknown}. "
                         f"Known: {list(known)}.")
    return names


def check_instance(value: T, name: str, types: type | tuple[type, ...], what: str) -> T:
    """``value`` if it is an instance of ``types``; ``what`` says what is expected in words.

    Example:
        >>> check_instance(4, "partition", tuple, "a modlib Partition")
        Traceback (most recent call last):
        ...
        TypeError: 'partition' must be a modlib Partition. Got int 4.
    """
    if not isinstance(value, types):
        got = describe(value)
        if isinstance(value, int) and not isinstance(value, bool):
            got = f"int {got}"  # "Got int 4": the wrong kind of value, not a wrong count
        raise TypeError(f"'{name}' must be {what}. Got {got}.")
    return value


def check_tensor(value: object, name: str, *, kind: str | None = None,
                 ndim: int | None = None, nonempty: bool = False) -> Tensor:
    """``value`` if it is a tensor of the given ``kind`` and ``ndim`` (and not empty).

    ``kind`` is ``"float"`` (floating point), ``"int"`` (integer, not bool), ``"bool"`` or None
    (any dtype).

    Example:
        >>> check_tensor([1.0], "losses")
        Traceback (most recent call last):
        ...
        TypeError: 'losses' must be a torch.Tensor. Got list [1.0].
    """
    if not isinstance(value, Tensor):
        raise TypeError(f"'{name}' must be a torch.Tensor. Got {describe(value)}.")
    dt = value.dtype
    ok = {None: True, "float": dt.is_floating_point, "bool": dt == torch.bool,
          "int": not (dt.is_floating_point or dt.is_complex or dt == torch.bool)}[kind]
    if not ok:
        words = {"float": "a floating-point", "int": "an integer", "bool": "a bool"}[kind]
        raise TypeError(f"'{name}' must be {words} tensor. Got dtype {dt}.")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"'{name}' must be {ndim}-D. Got shape {tuple(value.shape)}.")
    if nonempty and value.numel() == 0:
        raise ValueError(f"'{name}' must not be empty. Got shape {tuple(value.shape)}.")
    return value


def check_callable(value: T, name: str) -> T:
    """``value`` if it can be called.

    Example:
        >>> check_callable(3, "measure")
        Traceback (most recent call last):
        ...
        TypeError: 'measure' must be callable. Got 3.
    """
    if not callable(value):
        raise TypeError(f"'{name}' must be callable. Got {describe(value)}.")
    return value


def check_mapping(value: object, name: str, what: str, *, nonempty: bool = True,
                  values: type | tuple[type, ...] | None = None, values_what: str = ""
                  ) -> Mapping[Any, Any]:
    """``value`` if it is a dict (any ``Mapping``), non-empty unless ``nonempty`` is False.

    ``what`` describes its entries, e.g. ``"{layer name: Partition}"``. With ``values``, every
    entry must be an instance of it (``values_what`` in words), checked as ``name[key]``.

    Example:
        >>> check_mapping({}, "partitions", "{layer name: Partition}")
        Traceback (most recent call last):
        ...
        ValueError: 'partitions' must be a non-empty dict {layer name: Partition}. Got dict {}.
        >>> check_mapping({"a": 1}, "runs", "{name: str}", values=str, values_what="a str")
        Traceback (most recent call last):
        ...
        TypeError: 'runs['a']' must be a str. Got int 1.
    """
    adj = "non-empty " if nonempty else ""
    if not isinstance(value, Mapping):
        raise TypeError(f"'{name}' must be a {adj}dict {what}. Got {describe(value)}.")
    if nonempty and not value:
        raise ValueError(f"'{name}' must be a {adj}dict {what}. Got {describe(value)}.")
    if values is not None:
        for key, entry in value.items():
            check_instance(entry, f"{name}[{key!r}]", values, values_what)
    return value


def model_device(model: object, name: str = "model") -> torch.device:
    """The device of ``model``'s first parameter (the CPU for a model without any)."""
    check_module(model, name)
    assert isinstance(model, nn.Module)
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")
