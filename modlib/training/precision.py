"""Mixed precision: which arithmetic :func:`modlib.training.train.fit` trains in, and its tools.

On a GPU the forward pass runs in mixed precision: bfloat16 where the GPU has it natively (Ampere
and newer), float16 with a gradient scaler on older GPUs such as Colab's T4, whose float16 range
needs the loss scaled up so that small gradients do not underflow (Micikevicius et al. 2018,
*Mixed Precision Training*); float32 on the CPU. :func:`amp_plan` makes the choice,
:func:`autocast` and :func:`grad_scaler` carry it out. Introduced in notebook 07.
"""

from __future__ import annotations

import contextlib
from typing import Any, Literal, get_args

import torch

from ..validate import check_choice, check_instance, check_int, describe

__all__ = ["Plan", "Precision", "amp_plan", "autocast", "grad_scaler"]

Precision = Literal["auto", "bf16", "fp16", "fp32"]  # what a TrainConfig may ask for
Plan = Literal["bf16", "fp16", "fp32"]  # what amp_plan decides
_NATIVE_BF16 = (8, 0)  # compute capability from which GPUs have bfloat16 tensor cores (Ampere)


def amp_plan(device: str | torch.device, precision: Precision = "auto", *,
             capability: tuple[int, int] | None = None) -> Plan:
    """The arithmetic :func:`~modlib.training.train.fit` trains in on ``device``: bf16, fp16, fp32.

    ``"auto"`` chooses bfloat16 autocast on GPUs with native bfloat16 (compute capability >= 8.0:
    A100, H100, RTX 30xx and newer), float16 autocast with a gradient scaler on older GPUs (a T4,
    capability 7.5: the free Colab GPU; a V100), and float32 elsewhere (the CPU, Apple's MPS).
    The capability is asked, not ``torch.cuda.is_bf16_supported()``, which also says True for a
    T4, where bfloat16 is only emulated (slowly). A forced choice is returned as it is, but
    bfloat16 on a GPU without it is refused.

    Args:
        device: where training runs, e.g. ``"cpu"``, ``"cuda"`` or ``torch.device("cuda", 1)``.
        precision: ``"auto"``, or ``"bf16"``, ``"fp16"``, ``"fp32"`` to force one.
        capability: ``(major, minor)`` compute capability of the CUDA device; None asks the
            device (only when it is a CUDA device and the answer matters).

    Returns:
        ``"bf16"`` (bfloat16 autocast), ``"fp16"`` (float16 autocast and a
        ``torch.amp.GradScaler``) or ``"fp32"`` (no autocast).

    Raises:
        ValueError: an unknown ``precision``, or ``"bf16"`` forced on a CUDA GPU below
            capability 8.0.

    Example:
        >>> amp_plan("cpu")
        'fp32'
        >>> amp_plan("cuda", capability=(7, 5))  # a T4
        'fp16'
        >>> amp_plan("cuda", capability=(8, 0))  # an A100
        'bf16'

    Introduced in notebook 07.
    """
    check_choice(precision, "precision", get_args(Precision))
    device = _check_device(device)
    if device.type != "cuda":
        return "fp32" if precision == "auto" else precision
    if precision in ("fp16", "fp32"):
        return precision
    if capability is None:
        capability = torch.cuda.get_device_capability(device)
    capability = _check_capability(capability)
    if capability >= _NATIVE_BF16:
        return "bf16"
    if precision == "bf16":
        raise ValueError(f"'precision' 'bf16' needs a GPU of compute capability >= 8.0 (Ampere or "
                         f"newer); this one has {capability[0]}.{capability[1]}. Use 'auto' or "
                         f"'fp16'.")
    return "fp16"


def autocast(device: torch.device, plan: Plan) -> contextlib.AbstractContextManager:
    """The autocast context of a plan from :func:`amp_plan`: none for fp32.

    Args:
        device: where the forward pass runs.
        plan: ``"bf16"``, ``"fp16"`` or ``"fp32"``.

    Returns:
        ``torch.autocast`` to bfloat16 or float16, or a context that does nothing.

    Example:
        >>> with autocast(torch.device("cpu"), "bf16"):
        ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
        torch.bfloat16
    """
    _check_plan(device, plan)
    if plan == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if plan == "bf16" else torch.float16)


def grad_scaler(device: torch.device, plan: Plan) -> Any:
    """A gradient scaler for fp16 training on ``device``, else None.

    Args:
        device: where training runs.
        plan: ``"bf16"``, ``"fp16"`` or ``"fp32"``; only fp16 needs its loss scaled.

    Returns:
        A ``torch.amp.GradScaler`` (fp16), or None.

    Example:
        >>> grad_scaler(torch.device("cpu"), "bf16") is None
        True
    """
    _check_plan(device, plan)
    if plan != "fp16":
        return None
    if hasattr(torch.amp, "GradScaler"):  # torch >= 2.3, CUDA and CPU
        return torch.amp.GradScaler(device.type)
    return torch.cuda.amp.GradScaler()


# --- validation ----------------------------------------------------------------------------------


def _check_device(device: object) -> torch.device:
    """``device`` as a torch.device: a torch.device, or a device string such as ``"cuda"``."""
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise TypeError(f"'device' must be a torch.device or a str such as 'cpu' or 'cuda'. "
                        f"Got {describe(device)}.")
    try:
        return torch.device(device)
    except RuntimeError:
        raise ValueError(f"'device' must name a device such as 'cpu', 'cuda' or 'cuda:1'. "
                         f"Got {device!r}.") from None


def _check_capability(capability: object) -> tuple[int, int]:
    if isinstance(capability, (str, bytes)) or not hasattr(capability, "__iter__"):
        raise TypeError(f"'capability' must be a pair (major, minor) of ints or None. "
                        f"Got {describe(capability)}.")
    pair = tuple(capability)
    if len(pair) != 2:
        raise ValueError(f"'capability' must be a pair (major, minor) of ints or None. "
                         f"Got {pair!r}.")
    return (check_int(pair[0], "capability[0]", minimum=0),
            check_int(pair[1], "capability[1]", minimum=0))


def _check_plan(device: object, plan: object) -> None:
    check_instance(device, "device", torch.device, "a torch.device")
    check_choice(plan, "plan", get_args(Plan))
