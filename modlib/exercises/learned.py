"""Checkers for the exercises of notebooks 04–05: cluster ablation, specialization and circuits."""

from __future__ import annotations

__all__: list[str] = []
