"""Analyze any model: how clusterable is each layer, against chance and against shuffled weights?

``python -m modlib analyze MODEL`` (and :func:`analyze_model` in Python) takes a Hugging Face
model (a Hub id or a local folder), a torchvision model name or a module saved with
``torch.save(model)``, clusters every layer that has a weight graph (Linear, Conv2d, GPT-2's
Conv1D; see :func:`modlib.layer_matrix`) with :func:`modlib.spectral_cocluster`, and reports per
layer the clusterability of that partition, its chance level (:func:`modlib.chance_level`), the
excess over chance and the p-value of a null: shuffled weights (:func:`modlib.shuffle_test`), or
with ``null="scales"`` (``--null scales``) scale-matched copies that keep every neuron's size
(:func:`modlib.scale_matched`; a layer whose only structure is neurons of unequal size does not
pass it).

Cost: each layer is co-clustered ``1 + n_shuffles`` times. One co-clustering of a 3072 × 768
matrix takes about 0.15 s on one CPU core, so GPT-2 small (48 matrices of up to that size) with
the default 19 shuffles takes roughly 48 × 20 × 0.1 s ≈ 2 minutes (an estimate from that timing);
``n_shuffles=0`` (``--shuffles 0``) skips the null and its p-value, and ``layers``
(``--layers``) picks layers by name or glob pattern. Notebook 02 does the same by hand for
pretrained CNNs; this is it for any model.
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import json
import os
import re
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ..core.graph import layer_matrix, weight_layers
from ..core.metrics import chance_level, clusterability
from ..core.null import NULLS, shuffle_test
from ..core.partition import Partition
from ..core.spectral import spectral_cocluster
from ..training.hub import from_hub
from ..training.sources import Unreachable, cannot_reach, caused_by, reason, unusable
from ..validate import (
    check_bool,
    check_choice,
    check_instance,
    check_int,
    check_layer_names,
    check_module,
    describe,
)
from .experiments import check_out

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["LayerReport", "ModelAnalysis", "analyze_model", "load_any", "out_folder",
           "plot_analysis", "save_analysis"]

_SPEC = "a model: a .pt/.pth file, a Hugging Face folder or Hub id, or a torchvision name"
_REMEDY = ("analyze needs the module itself: save it with torch.save(model), or build the model, "
           "load the state dict into it and call modlib.analyze.analyze_model(model).")


@dataclass(frozen=True)
class LayerReport:
    """One layer of :func:`analyze_model`.

    Attributes:
        name: the layer's module name.
        shape: ``(n_out, n_in)`` of its weight matrix.
        clusterability: of the partition spectral co-clustering finds.
        chance_level: of that partition's cluster sizes (an unstructured matrix's score).
        excess: ``clusterability - chance_level``.
        p_value: share of null copies at least as clusterable (None without copies).
        null: the null copies' clusterability.
        partition: the spectral partition.
    """

    name: str
    shape: tuple[int, int]
    clusterability: float
    chance_level: float
    excess: float
    p_value: float | None
    null: list[float] = field(repr=False)
    partition: Partition = field(repr=False, compare=False)


@dataclass(frozen=True)
class ModelAnalysis:
    """What :func:`analyze_model` returns; ``to_dict()`` is ``results.json``.

    Attributes:
        model: what was analyzed, in words (e.g. ``"resnet18 (torchvision, random
            initialisation)"``).
        k: clusters per layer.
        n_shuffles: null copies per layer.
        seed: seeds the clustering and the copies.
        layers: one report per analyzed layer, in model order.
        skipped: ``{layer name: why}`` for the layers that could not be clustered.
        seconds: time taken.
        null: the kind of null copy, ``"shuffle"`` or ``"scales"`` (:func:`modlib.shuffle_test`).
    """

    model: str
    k: int
    n_shuffles: int
    seed: int
    layers: list[LayerReport]
    skipped: dict[str, str]
    seconds: float
    null: str = "shuffle"

    def to_dict(self) -> dict[str, Any]:
        """Everything but the partitions, as plain JSON types."""
        layers = [{key: value for key, value in asdict(r).items() if key != "partition"}
                  for r in self.layers]
        for row in layers:
            row["shape"] = list(row["shape"])
        return {"model": self.model, "k": self.k, "n_shuffles": self.n_shuffles,
                "null": self.null, "seed": self.seed, "method": _METHOD + _NULL_TEXT[self.null],
                "layers": layers,
                "skipped": dict(self.skipped), "seconds": round(self.seconds, 2)}

    def table(self) -> str:
        """The report as text: one line per layer, then the skipped layers."""
        width = max([len(r.name) for r in self.layers] + [5])
        kind = "shuffled" if self.null == "shuffle" else "scale-matched"
        shuffles = (f"{self.n_shuffles} {kind} copies per layer" if self.n_shuffles
                    else f"no {kind} copies (no p-values)")
        lines = [f"{self.model}: k={self.k}, {shuffles}",
                 f"{'layer':<{width}}  {'shape':<12}  clusterability  chance  excess       p"]
        for r in self.layers:
            p = "-" if r.p_value is None else f"{r.p_value:.3g}"
            lines.append(f"{r.name:<{width}}  {str(r.shape):<12}  {r.clusterability:14.3f}  "
                         f"{r.chance_level:6.3f}  {r.excess:+6.3f}  {p:>6}")
        lines += [f"skipped {name}: {why}" for name, why in self.skipped.items()]
        return "\n".join(lines)


_METHOD = ("per layer: spectral co-clustering into k clusters (modlib.spectral_cocluster); "
           "clusterability of that partition, its chance level (sum over clusters of the shares "
           "of rows times the shares of columns), excess = clusterability - chance level; "
           "p_value = (1 + #null copies at least as clusterable) / (1 + n_shuffles), each copy "
           "clustered the same way (modlib.shuffle_test); ")
_NULL_TEXT = {"shuffle": "null copies: the layer's entries randomly permuted",
              "scales": "null copies: scale-matched, Gaussian entries that keep every row's and "
                        "column's squared weight (modlib.scale_matched)"}


def load_any(spec: str | os.PathLike, *, pretrained: bool = False, progress: bool = True
             ) -> tuple[nn.Module, str]:
    """Load a model from a file, a folder, a torchvision name or a Hugging Face Hub id.

    In this order: an existing ``.pt``/``.pth`` file holding a module saved with
    ``torch.save(model)`` (a state dict is refused: the module is needed); an existing folder,
    by ``transformers.AutoModel.from_pretrained(local_files_only=True)``; a name of
    ``torchvision.models.list_models()``, randomly initialised unless ``pretrained``; any other
    name as a Hub id, from the Hugging Face cache or the Hub. ``AutoModel`` gives the base
    model, without its task head (a language model's output layer, a classifier).

    A pickled module can only be read with ``torch.load(weights_only=False)``, which runs code
    from the file: a note on stderr says so. Load only files you trust.

    Args:
        spec: the file, folder or name.
        pretrained: torchvision only: load its default pretrained weights (downloaded once).
        progress: let transformers and torchvision show their loading and download bars.

    Returns:
        ``(model, label)``: the module and what it is in words, e.g. ``"gpt2 (Hugging Face Hub,
        GPT2Model)"`` or ``"net.pt (a saved MnistCNN)"``.

    Raises:
        TypeError: ``spec`` not a str or path, ``pretrained`` or ``progress`` not a bool.
        ValueError: no such model, a file that is not a saved module, a folder that does not
            load, the Hub or the weights cannot be reached, or ``pretrained`` for a model that
            is not a torchvision name (each in one sentence).

    Example:
        >>> model, label = load_any("squeezenet1_1")
        >>> label
        'squeezenet1_1 (torchvision, random initialisation: no pretrained weights)'
    """
    if not isinstance(spec, (str, os.PathLike)):
        raise TypeError(f"'model' must be {_SPEC} (a str). Got {describe(spec)}.")
    check_bool(pretrained, "pretrained")
    check_bool(progress, "progress")
    name = os.fspath(spec)
    if not name.strip():
        raise ValueError(f"'model' must be {_SPEC}. Got an empty string.")
    path = Path(name).expanduser()
    torchvision_names = _torchvision_names()
    kind = ("file" if path.is_file() else "folder" if path.is_dir()
            else "torchvision" if name in torchvision_names else "hub")
    if pretrained and kind != "torchvision":
        raise ValueError(f"'pretrained' applies to torchvision model names only; {name!r} is a "
                         f"{'Hugging Face Hub id' if kind == 'hub' else kind}.")
    if kind == "file":
        return _load_file(path)
    if kind == "torchvision":
        return _load_torchvision(name, pretrained, progress)
    if kind == "hub" and (name.endswith((".pt", ".pth"))
                          or name.startswith(("/", "./", "../", "~"))):
        raise ValueError(f"'model' names no file or folder: {name!r} does not exist.")
    with _transformers_bars(progress):
        return _load_folder(path) if kind == "folder" else _load_hub(name, torchvision_names)


@contextlib.contextmanager
def _transformers_bars(progress: bool) -> Iterator[None]:
    """Inside: transformers' (and the Hub's) progress bars off when not ``progress``, and its
    load report (the task head that AutoModel leaves out is "UNEXPECTED") unsaid."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # the loaders say that transformers is missing
        yield
        return
    bars_off = not progress and hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    if bars_off:
        hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars_off:
            hf_logging.enable_progress_bar()


def _torchvision_names() -> list[str]:
    try:
        import torchvision
    except ImportError:  # pragma: no cover (a dependency of modlib)
        return []
    return torchvision.models.list_models()


def _load_file(path: Path) -> tuple[nn.Module, str]:
    if path.suffix not in (".pt", ".pth"):
        raise ValueError(f"'model' file {path} must be a .pt or .pth file written by "
                         f"torch.save(model). Got a {path.suffix or 'suffix-less'} file.")
    what, remedy = "model file", "Save the model with torch.save(model)."
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a pickled module fails here: its classes are not plain weights
        if "Weights only load failed" not in str(exc):
            raise unusable(path, what, f"torch.load cannot read it ({reason(exc)})",
                           remedy) from None
        print(f"modlib.analyze: {path} holds a pickled object, loaded with "
              f"torch.load(weights_only=False), which runs code from the file: load only files "
              f"you trust.", file=sys.stderr, flush=True)
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc2:  # e.g. its class is not importable here
            raise unusable(path, what, f"it cannot be unpickled ({reason(exc2)})",
                           "Import the module that defines its class, or save a module whose "
                           "class can be imported.") from None
    if isinstance(obj, nn.Module):
        return obj, f"{path.name} (a saved {type(obj).__name__})"
    if isinstance(obj, dict):
        keys = [str(key) for key in list(obj)[:3]]
        raise unusable(path, what, f"it holds a state dict or checkpoint (keys {keys}...), not "
                       f"a module", _REMEDY)
    raise unusable(path, what, f"it holds a {type(obj).__name__}, not a module", _REMEDY)


def _load_folder(path: Path) -> tuple[nn.Module, str]:
    if not (path / "config.json").is_file():
        raise ValueError(f"'model' folder {path} is not a Hugging Face model folder: it has no "
                         f"config.json.")
    try:
        from transformers import AutoModel
    except ImportError:
        raise ValueError("Loading a Hugging Face model folder needs transformers (the [llm] "
                         "extra: pip install 'modlib[llm]').") from None
    try:
        model = AutoModel.from_pretrained(path, local_files_only=True)
    except Exception as exc:
        raise ValueError(f"The Hugging Face model folder {path} cannot be loaded "
                         f"({reason(exc)}).") from None
    return model, f"{path.resolve().name} (Hugging Face folder, {type(model).__name__})"


def _load_torchvision(name: str, pretrained: bool, progress: bool) -> tuple[nn.Module, str]:
    import torchvision

    builder = torchvision.models.get_model_builder(name)
    kwargs: dict[str, Any] = {"weights": "DEFAULT" if pretrained else None, "progress": progress}
    if "weights_backbone" in inspect.signature(builder).parameters:
        kwargs["weights_backbone"] = None  # no download for a detection model's backbone
    try:
        model = builder(**kwargs)
    except Exception as exc:
        if pretrained and cannot_reach(exc):
            raise ValueError(f"The pretrained weights of {name} cannot be downloaded (no "
                             f"internet); leave out --pretrained for a random "
                             f"initialisation.") from None
        raise ValueError(f"torchvision cannot build {name} ({reason(exc)}).") from None
    if not pretrained:
        return model, f"{name} (torchvision, random initialisation: no pretrained weights)"
    weights = torchvision.models.get_model_weights(name).DEFAULT
    return model, f"{name} (torchvision, pretrained weights {weights})"


def _load_hub(name: str, torchvision_names: list[str]) -> tuple[nn.Module, str]:
    close = difflib.get_close_matches(name.lower(), torchvision_names, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    unknown = (f"Unknown model {name!r}: not a .pt/.pth file, a folder, a torchvision model name "
               f"(torchvision.models.list_models()) or a Hugging Face Hub id.{hint}")
    if not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", name):  # no Hub id, and no import to see it
        raise ValueError(unknown)
    needs = f"{unknown} (Loading from the Hub needs transformers, the [llm] extra.)"
    try:
        from huggingface_hub.errors import RepositoryNotFoundError
        from huggingface_hub.utils import validate_repo_id

        validate_repo_id(name)  # the Hub's own rules, checked before transformers is imported
    except ImportError:
        raise ValueError(needs) from None
    except Exception:
        raise ValueError(unknown) from None
    try:
        from transformers import AutoModel
    except ImportError:
        raise ValueError(needs) from None
    try:
        model = from_hub(name, lambda **kwargs: AutoModel.from_pretrained(name, **kwargs))
    except Unreachable as exc:
        raise ValueError(f"Cannot load {name!r}: it is not a file, a folder or a torchvision "
                         f"model name, and the Hugging Face Hub cannot be reached ({exc})."
                         f"{hint}") from None
    except Exception as exc:
        if caused_by(exc, RepositoryNotFoundError) or "not a valid model identifier" in str(exc):
            raise ValueError(unknown) from None
        raise ValueError(f"Cannot load {name!r} from the Hugging Face Hub "
                         f"({reason(exc)}).") from None
    return model, f"{name} (Hugging Face Hub, {type(model).__name__})"


def _select(model: nn.Module, layers: Sequence[str] | None) -> dict[str, nn.Module]:
    """The weight layers named by ``layers`` (names or glob patterns; a module's name selects
    the weight layers inside it), in model order; all of them when None."""
    found = weight_layers(model)
    if not found:
        raise ValueError(f"'model' ({type(model).__name__}) has no layer with a weight graph "
                         f"(nn.Linear, nn.Conv2d with groups=1, transformers Conv1D).")
    if layers is None:
        return found
    patterns = check_layer_names(layers, (), "layers", check_known=False)
    for p in patterns:
        if not any(fnmatchcase(n, p) or fnmatchcase(n, p + ".*") for n in found):
            names = list(found)
            more = f", ... ({len(names)} in all)" if len(names) > 8 else ""
            raise ValueError(f"'layers' pattern {p!r} matches no weight layer of the model; its "
                             f"weight layers are {names[:8]}{more}.")
    return {n: m for n, m in found.items()
            if any(fnmatchcase(n, p) or fnmatchcase(n, p + ".*") for p in patterns)}


def _why_skipped(W: torch.Tensor, k: int) -> str | None:
    n_out, n_in = W.shape
    if k > min(n_out, n_in):
        return f"k={k} is larger than a side of its weight matrix {(n_out, n_in)}"
    if not bool(torch.isfinite(W).all()):
        return "it has NaN/Inf weights"
    if not bool(W.any()):
        return "its weights are all zero"
    return None


def _report(name: str, W: torch.Tensor, k: int, n_shuffles: int, seed: int, null: str
            ) -> LayerReport:
    if n_shuffles:
        test = shuffle_test(W, k, n_shuffles=n_shuffles, seed=seed, progress=False, null=null)
        part, observed, null, p = test.partition, test.observed, test.null, test.p_value
    else:
        part = spectral_cocluster(W, k, seed=seed)
        observed, null, p = float(clusterability(W, part)), [], None
    chance = chance_level(part)
    shape = (int(W.shape[0]), int(W.shape[1]))
    return LayerReport(name, shape, observed, chance, observed - chance, p, null, part)


def analyze_model(model: nn.Module, *, k: int = 4, layers: Sequence[str] | None = None,
                  n_shuffles: int = 19, seed: int = 0, progress: bool = True,
                  label: str | None = None, null: str = "shuffle") -> ModelAnalysis:
    """Cluster each weight layer of ``model``; score it against chance and shuffled weights.

    Each layer's ``W`` (n_out, n_in) (:func:`modlib.layer_matrix`, in float32) is co-clustered
    into ``k`` clusters (:func:`modlib.spectral_cocluster`); its clusterability is reported
    beside its chance level, the excess over chance, and the p-value of ``n_shuffles`` null
    copies of W (:func:`modlib.shuffle_test`). A layer with a side
    smaller than ``k``, or NaN/Inf or all-zero weights, is skipped with a note.

    Args:
        model: the network.
        k: clusters per layer, >= 2.
        layers: layer names or glob patterns (``"layer1.*"``); a module's name selects the
            weight layers inside it. Default: every layer with a weight graph.
        n_shuffles: null copies per layer (0: no p-value); the smallest p-value is
            ``1 / (n_shuffles + 1)``, and each copy costs one more co-clustering.
        seed: seeds the clustering and the copies.
        progress: show a progress bar over the layers.
        label: what the model is, in words (default: its class name).
        null: ``"shuffle"`` (the layer's entries randomly permuted) or ``"scales"``
            (:func:`modlib.scale_matched` copies: every neuron keeps its size, the modules
            go; stricter where neurons differ in size, as in trained layers).

    Returns:
        A :class:`ModelAnalysis`: one :class:`LayerReport` per layer, and the skipped layers.

    Raises:
        TypeError: an argument of the wrong type.
        ValueError: ``k < 2``, ``n_shuffles < 0``, ``null`` not ``"shuffle"`` or ``"scales"``,
            a pattern that matches no weight layer, or no layer left to cluster.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
        >>> result = analyze_model(net, k=4, n_shuffles=4, progress=False)
        >>> [r.name for r in result.layers], result.skipped
        (['0'], {'2': 'k=4 is larger than a side of its weight matrix (3, 16)'})
    """
    check_module(model)
    k = check_int(k, "k", minimum=2)
    n_shuffles = check_int(n_shuffles, "n_shuffles", minimum=0)
    seed = check_int(seed, "seed")
    check_bool(progress, "progress")
    check_choice(null, "null", NULLS)
    if label is not None:
        check_instance(label, "label", str, "a str or None")
    chosen = _select(model, layers)
    start = time.perf_counter()
    reports, skipped = [], {}
    bar = tqdm(chosen.items(), desc="layers", unit="layer", disable=not progress)
    for name, module in bar:
        bar.set_postfix_str(name, refresh=False)
        with torch.no_grad():
            W = layer_matrix(module).detach().float()  # (n_out, n_in); float16 checkpoints too
        why = _why_skipped(W, k)
        if why:
            skipped[name] = why
        else:
            reports.append(_report(name, W, k, n_shuffles, seed, null))
    if not reports:
        raise ValueError(f"No layer can be clustered at k={k}: "
                         + "; ".join(f"{n}: {why}" for n, why in skipped.items()) + ".")
    return ModelAnalysis(label or type(model).__name__, k, n_shuffles, seed, reports, skipped,
                         time.perf_counter() - start, null)


def plot_analysis(analysis: ModelAnalysis, *, ax: Axes | None = None) -> Figure:
    """Per layer: clusterability of the spectral partition beside its chance level.

    Bars are the clusterability (blue when the p-value is at most 0.05), black ticks the chance
    level, orange lines the range of the null copies (shuffled or scale-matched, as analyzed);
    each bar is labelled with its p-value.

    Args:
        analysis: what :func:`analyze_model` returns.
        ax: axes to draw on (default: a new figure, taller with more layers).

    Returns:
        The figure.

    Raises:
        TypeError: ``analysis`` is not a :class:`ModelAnalysis`.

    Example:
        >>> net = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8))
        >>> fig = plot_analysis(analyze_model(net, n_shuffles=2, progress=False))
    """
    check_instance(analysis, "analysis", ModelAnalysis, "a ModelAnalysis (from analyze_model)")
    import matplotlib.pyplot as plt

    reports = analysis.layers
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 1.4 + 0.3 * len(reports)), layout="constrained")
    y = list(range(len(reports)))[::-1]  # the first layer on top
    significant = [r.p_value is not None and r.p_value <= 0.05 for r in reports]
    ax.barh(y, [r.clusterability for r in reports], height=0.6,
            color=["tab:blue" if s else "tab:gray" for s in significant])
    ax.scatter([r.chance_level for r in reports], y, marker="|", s=300, color="k", zorder=3,
               label="chance level")
    for yi, r in zip(y, reports, strict=True):
        if r.null:
            ax.plot([min(r.null), max(r.null)], [yi, yi], color="tab:orange", lw=3, alpha=0.8,
                    label=("shuffled weights (range)" if analysis.null == "shuffle"
                           else "scale-matched copies (range)") if yi == y[0] else None)
        if r.p_value is not None:
            ax.annotate(f"p={r.p_value:.2g}", (r.clusterability, yi), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize=7)
    ax.set_yticks(y, [r.name for r in reports], fontsize=7 if len(reports) > 20 else 8)
    ax.set(xlim=(0, 1.12), xlabel=f"clusterability of the spectral partition (k={analysis.k}); "
           "blue: p ≤ 0.05")
    ax.set_title(analysis.model, fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    return ax.figure


def save_analysis(analysis: ModelAnalysis, out: str | os.PathLike) -> dict[str, Path]:
    """Write ``results.json`` and ``clusterability.png`` (:func:`plot_analysis`) to ``out``.

    Args:
        analysis: what :func:`analyze_model` returns.
        out: the folder, made if missing.

    Returns:
        ``{"results": path, "figure": path}``.

    Raises:
        TypeError: ``analysis`` not a :class:`ModelAnalysis`, ``out`` not a path.
        ValueError: ``out`` is a file or cannot be written to.

    Example:
        >>> import tempfile
        >>> net = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8))
        >>> paths = save_analysis(analyze_model(net, n_shuffles=2, progress=False),
        ...                       tempfile.mkdtemp())
        >>> sorted(p.name for p in paths.values())
        ['clusterability.png', 'results.json']
    """
    check_instance(analysis, "analysis", ModelAnalysis, "a ModelAnalysis (from analyze_model)")
    folder = check_out(out)
    import matplotlib.pyplot as plt

    results, figure = folder / "results.json", folder / "clusterability.png"
    tmp = folder / ".results.json.tmp"  # replaced whole: a reader never sees half a file
    tmp.write_text(json.dumps(analysis.to_dict(), indent=2) + "\n")
    tmp.replace(results)
    fig = plot_analysis(analysis)
    fig.savefig(figure, dpi=110)
    plt.close(fig)
    return {"results": results, "figure": figure}


def out_folder(spec: str | os.PathLike) -> Path:
    """The default output folder of ``python -m modlib analyze MODEL``: ``results/analyze-NAME``.

    NAME is the file's stem, the folder's name, or the model name with ``/`` as ``-``.

    Example:
        >>> out_folder("EleutherAI/pythia-70m").as_posix()
        'results/analyze-EleutherAI-pythia-70m'
        >>> out_folder("checkpoints/mnist.pt").as_posix()
        'results/analyze-mnist'
    """
    if not isinstance(spec, (str, os.PathLike)):
        raise TypeError(f"'model' must be {_SPEC} (a str). Got {describe(spec)}.")
    name = os.fspath(spec)
    path = Path(name).expanduser()
    if path.is_dir():
        name = path.resolve().name
    elif path.suffix in (".pt", ".pth"):
        name = path.stem
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "model"
    return Path("results") / f"analyze-{name}"
