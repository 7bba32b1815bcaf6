"""Checkers for the exercises of notebook 06: the modular-addition transformer and its Fourier
features."""

from __future__ import annotations

__all__: list[str] = []
