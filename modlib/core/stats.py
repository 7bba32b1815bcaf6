"""Several seeds, one number: the mean and its 95 % interval, and whether that is a finding.

One training run is an anecdote: the same recipe from another seed moves accuracy, circuit size
and specialization by as much as many of the effects the course measures. ``reproduce`` trains
several seeds and summarises every headline number with :func:`mean_interval`: the mean and a
95 % Student-t interval over seeds. A difference is called a *finding* only when its interval
excludes no effect (0 for a difference, 1 for a ratio): :attr:`Interval.finding`.
Introduced in notebook 03.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..validate import check_instance, check_real, describe

__all__ = ["Interval", "group_seeds", "mean_interval", "t_quantile"]

# Two-sided 95 % quantiles of Student's t, t_{0.975}(df), for df = 1 ... 30.
_T975 = (12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004,
         2.262157, 2.228139, 2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905,
         2.109816, 2.100922, 2.093024, 2.085963, 2.079614, 2.073873, 2.068658, 2.063899,
         2.059539, 2.055529, 2.051831, 2.048407, 2.045230, 2.042272)
_Z975 = 1.959963985


def t_quantile(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (a 95 % interval).

    Exact to six digits for ``df`` up to 30 (a table); beyond, the Cornish-Fisher expansion
    around the normal quantile, within 1e-5 of the exact value.

    Args:
        df: degrees of freedom, an int >= 1 (the number of seeds minus one).

    Returns:
        The quantile, e.g. 4.303 for 2 degrees of freedom (three seeds).

    Raises:
        TypeError: ``df`` not an int.
        ValueError: ``df < 1``.

    Example:
        >>> round(t_quantile(2), 3), round(t_quantile(1000), 3)
        (4.303, 1.962)
    """
    if isinstance(df, bool) or not isinstance(df, int):
        raise TypeError(f"'df' must be an int >= 1. Got {describe(df)}.")
    if df < 1:
        raise ValueError(f"'df' must be an int >= 1. Got {df!r}.")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    return (z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3))


@dataclass(frozen=True)
class Interval:
    """A mean over seeds with its 95 % Student-t interval.

    ``low`` and ``high`` are None when fewer than two values are finite (one seed gives no
    interval). ``null`` is the value of no effect (0 for a difference, 1 for a ratio);
    :attr:`finding` is True only when the interval excludes it.
    """

    mean: float | None
    low: float | None
    high: float | None
    n: int  # finite values the interval is computed from
    null: float | None = None  # the value of no effect, or None when there is none to test
    method: str = "95 % t-interval over seeds"

    @property
    def finding(self) -> bool:
        """True when the interval exists and excludes the value of no effect."""
        if self.null is None or self.low is None or self.high is None:
            return False
        return self.low > self.null or self.high < self.null

    @property
    def half_width(self) -> float | None:
        """Half the interval's width (the ± part), or None without an interval."""
        return None if self.low is None or self.high is None else (self.high - self.low) / 2

    def format(self, digits: int = 3) -> str:
        """``"0.969 ± 0.004"`` (mean ± half-width), or the mean alone without an interval.

        Example:
            >>> mean_interval([0.96, 0.97, 0.98]).format()
            '0.970 ± 0.025'
        """
        if self.mean is None:
            return "n/a"
        if self.half_width is None:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.half_width:.{digits}f}"

    def to_dict(self) -> dict[str, Any]:
        """The fields and :attr:`finding`, for ``results.json``."""
        return {**asdict(self), "finding": self.finding}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Interval:
        """The interval that :meth:`to_dict` wrote (``finding`` is recomputed, not read).

        Raises:
            TypeError: ``d`` not a dict.
            ValueError: ``d`` without ``mean``, ``low``, ``high`` or ``n``.

        Example:
            >>> iv = mean_interval([0.4, 0.5, 0.45], null=1.0)
            >>> Interval.from_dict(iv.to_dict()) == iv
            True
        """
        check_instance(d, "d", Mapping, "a dict, as Interval.to_dict writes")
        missing = [key for key in ("mean", "low", "high", "n") if key not in d]
        if missing:
            raise ValueError(f"'d' must hold the keys ['mean', 'low', 'high', 'n']. "
                             f"Missing: {missing}.")
        return cls(d["mean"], d["low"], d["high"], d["n"], d.get("null"),
                   d.get("method", cls.method))


def mean_interval(values: Sequence[float | None], *, null: float | None = None) -> Interval:
    """The mean of ``values`` and its 95 % Student-t interval, mean ± t · sd / √n.

    Values that are None or not finite (e.g. a specialization with nothing to score) are left
    out, and ``n`` counts the rest. With fewer than two left there is no interval.

    Args:
        values: one number per seed.
        null: the value of no effect (0 for a difference, 1 for a ratio), or None.

    Returns:
        An :class:`Interval`.

    Raises:
        TypeError: ``values`` not a sequence of numbers (or None); ``null`` not a real.
        ValueError: ``null`` not finite.

    Example:
        >>> iv = mean_interval([-0.010, -0.006, -0.008], null=0.0)
        >>> round(iv.mean, 3), round(iv.low, 3), round(iv.high, 3), iv.finding
        (-0.008, -0.013, -0.003, True)
    """
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"'values' must be a sequence of numbers. Got {describe(values)}.")
    for i, v in enumerate(values):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise TypeError(f"'values[{i}]' must be a number or None. Got {describe(v)}.")
    if null is not None:
        null = check_real(null, "null")
    xs = [float(v) for v in values if v is not None and math.isfinite(v)]
    n = len(xs)
    if n == 0:
        return Interval(None, None, None, 0, null)
    mean = math.fsum(xs) / n
    if n == 1:
        return Interval(mean, None, None, 1, null)
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    half = t_quantile(n - 1) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, null)


def group_seeds(rows: Sequence[Mapping[str, Any]], keys: Sequence[str] = ("clusterability",)
                ) -> list[dict[str, Any]]:
    """The rows of :func:`modlib.sweep` grouped by (k, λ): each key's mean and 95 % interval.

    Args:
        rows: what :func:`modlib.sweep` returns (dicts with ``k``, ``lam`` and the ``keys``),
            one per seed and grid point.
        keys: the numbers to summarise.

    Returns:
        One dict per (k, λ), in the rows' order: ``k``, ``lam``, ``n_seeds`` and, for each
        key, an :class:`Interval` over the seeds.

    Raises:
        TypeError: ``rows`` not a sequence of dicts or ``keys`` not a sequence of str.
        ValueError: ``rows`` or ``keys`` empty, or a row without ``k``, ``lam`` or a key.

    Example:
        >>> rows = [{"seed": s, "k": 4, "lam": 20.0, "accuracy": a}
        ...         for s, a in enumerate([0.96, 0.97, 0.98])]
        >>> group_seeds(rows, ["accuracy"])[0]["accuracy"].format()
        '0.970 ± 0.025'
    """
    if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Sequence):
        raise TypeError(f"'rows' must be a list of dicts, as modlib.sweep returns. "
                        f"Got {describe(rows)}.")
    if isinstance(keys, (str, bytes)) or not isinstance(keys, Sequence) or not keys:
        raise TypeError(f"'keys' must be a non-empty sequence of str. Got {describe(keys)}.")
    for i, key in enumerate(keys):
        check_instance(key, f"keys[{i}]", str, "a str")
    if not rows:
        raise ValueError("'rows' is empty: run modlib.sweep first.")
    groups: dict[tuple[Any, Any], list[Mapping[str, Any]]] = {}
    for i, r in enumerate(rows):
        check_instance(r, f"rows[{i}]", Mapping, "a dict, as modlib.sweep returns")
        missing = [key for key in ("k", "lam", *keys) if key not in r]
        if missing:
            raise ValueError(f"'rows[{i}]' must hold the keys {['k', 'lam', *keys]}. "
                             f"Missing: {missing}.")
        groups.setdefault((r["k"], r["lam"]), []).append(r)
    return [{"k": k, "lam": lam, "n_seeds": len(group),
             **{key: mean_interval([r[key] for r in group]) for key in keys}}
            for (k, lam), group in groups.items()]
