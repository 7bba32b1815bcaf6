"""Interactive explorers (ipywidgets) built on the same functions as the static figures.

Each ``*_explorer()`` draws its default figure first, so a static page (the book) shows a
meaningful picture, and then returns the widget for a live notebook. Introduced in notebook 01.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt

from .metrics import clusterability
from .spectral import spectral_cocluster
from .toy import planted_matrix
from .viz import plot_tradeoff, plot_weights

__all__ = ["plot_planted", "planted_explorer", "tradeoff_explorer"]


def plot_planted(noise: float = 0.3, k: int = 4, seed: int = 0, *, n_out: int = 60,
                 n_in: int = 40) -> plt.Figure:
    """Three panels: a shuffled planted matrix, its planted order, and the order that
    spectral co-clustering finds (with clusterability and chance in each title).

    Introduced in notebook 01.
    """
    toy = planted_matrix(n_out, n_in, k, noise=noise, seed=seed)
    found = spectral_cocluster(toy.W, k, seed=seed)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), layout="constrained")
    plot_weights(toy.W, ax=axes[0], title="as the layer stores it")
    plot_weights(toy.W, toy.partition, ax=axes[1])
    axes[1].set_title(f"planted modules\n{axes[1].get_title()}", fontsize=9)
    plot_weights(toy.W, found, ax=axes[2])
    axes[2].set_title(f"found by spectral co-clustering\n{axes[2].get_title()}", fontsize=9)
    fig.suptitle(f"noise {noise:g}, k = {k}, seed {seed}: planted C = "
                 f"{float(clusterability(toy.W, toy.partition)):.3f}")
    return fig


def planted_explorer() -> Any:
    """Sliders for noise, k and seed over :func:`plot_planted`.

    Returns:
        An ``ipywidgets`` interactive widget (display it as a cell's last line).

    Introduced in notebook 01.
    """
    import ipywidgets as w

    def show(noise: float, k: int, seed: int) -> None:
        plot_planted(noise, k, seed)
        plt.show()

    return w.interactive(show, noise=w.FloatSlider(value=0.3, min=0.0, max=1.0, step=0.05),
                         k=w.IntSlider(value=4, min=2, max=8), seed=w.IntSlider(value=0, max=9))


def tradeoff_explorer(rows: list[dict[str, Any]], *, metric: str = "accuracy") -> Any:
    """A λ slider over the runs of :func:`modlib.sweep`: the trade-off curve with the chosen
    run highlighted and its numbers in the title.

    Args:
        rows: what :func:`modlib.sweep` returned.
        metric: the key on the y axis.

    Returns:
        An ``ipywidgets`` interactive widget.

    Raises:
        ValueError: ``rows`` is empty.

    Introduced in notebook 03.
    """
    import ipywidgets as w

    if not rows:
        raise ValueError("'rows' is empty: run modlib.sweep first.")
    lams = sorted({r["lam"] for r in rows})

    def show(lam: float) -> None:
        fig = plot_tradeoff(rows, metric=metric)
        ax = fig.axes[0]
        for r in (r for r in rows if r["lam"] == lam):
            ax.scatter([r["clusterability"]], [r[metric]], s=160, facecolors="none",
                       edgecolors="tab:red", linewidths=2, zorder=5)
            ax.set_title(f"λ = {lam:g}: {metric} {r[metric]:.3f}, "
                         f"clusterability {r['clusterability']:.3f}")
        plt.show()

    return w.interactive(show, lam=w.SelectionSlider(options=lams, value=lams[-1],
                                                     description="λ"))
