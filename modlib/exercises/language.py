"""Checkers for the exercises of notebook 07: modular language models."""

from __future__ import annotations

__all__: list[str] = []
