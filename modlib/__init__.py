"""modlib: modular training of neural networks for interpretability, the course library.

Weight graphs of layers, clusterability, spectral co-clustering and the clusterability loss
(Golechha et al. 2025, *Modular Training of Neural Networks aids Interpretability*), with the
training loop, data, models and experiments of the course. Notebooks write ``import modlib``.

The library has four parts, each importing only the parts before it (see ``modlib/README.md``):

- :mod:`modlib.core`: weight graphs, partitions, clusterability and its chance level, spectral
  co-clustering, the clusterability loss;
- :mod:`modlib.training`: the training loop, models, data, profiles and the pretrained zoo;
- :mod:`modlib.analysis`: ablation, attribution patching, circuits, the Fourier view, language
  models;
- :mod:`modlib.course`: experiments, figures, widgets, exercise checkers and student notebooks.

Every sub-module is one attribute away, under its own name (``modlib.viz``, ``modlib.circuits``);
the names below are re-exported. Sub-modules load when first used, so ``import modlib`` pulls in
neither matplotlib, ipywidgets nor transformers.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# Each sub-module's home, by the name it is reached under: modlib.<name>.
SUBMODULES = {
    "core": "core", "training": "training", "analysis": "analysis", "course": "course",
    "validate": "validate", "hooks": "hooks",
    "graph": "core.graph", "partition": "core.partition", "metrics": "core.metrics",
    "spectral": "core.spectral", "refine": "core.refine", "loss": "core.loss", "toy": "core.toy",
    "null": "core.null", "stats": "core.stats",
    "train": "training.train", "models": "training.models", "data": "training.data",
    "vision": "training.vision", "text": "training.text", "standin": "training.standin",
    "zoo": "training.zoo", "profiles": "training.profiles", "sources": "training.sources",
    "hub": "training.hub", "precision": "training.precision", "bimt": "training.bimt",
    "interp": "analysis.interp", "patching": "analysis.patching", "circuits": "analysis.circuits",
    "truth": "analysis.truth",
    "fourier": "analysis.fourier", "llm": "analysis.llm", "lm_interp": "analysis.lm_interp",
    "experiments": "course.experiments", "viz": "course.viz", "network": "course.network",
    "widgets": "course.widgets", "exercises": "course.exercises", "student": "course.student",
    "analyze": "course.analyze",
}

# The public names re-exported here, by the sub-module that defines them.
_EXPORTS = {
    "core.graph": ["aligned_partitions", "default_layers", "layer_matrix", "weight_layers"],
    "core.partition": ["Partition", "contiguous_labels", "contiguous_partition"],
    "core.metrics": ["chance_level", "clusterability", "random_baseline"],
    "core.null": ["ShuffleTest", "scale_matched", "shuffle_test"],
    "core.spectral": ["SpectralEmbedding", "choose_k", "normalized_matrix", "spectral_cocluster",
                      "spectral_embedding"],
    "core.refine": ["refine_partition"],
    "core.loss": ["ClusterabilityLoss"],
    "training.train": ["History", "TrainConfig", "evaluate", "fit"],
    "training.bimt": ["BIMTLoss"],
    "training.profiles": ["Profile", "profile"],
    "training.zoo": ["Pretrained", "pretrained"],
    "course.experiments": ["ExperimentResult", "reproduce", "sweep"],
}
_NAMES = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [  # the re-exported names (a test checks that they match _EXPORTS)
    "BIMTLoss",
    "ClusterabilityLoss",
    "ExperimentResult",
    "History",
    "Partition",
    "Pretrained",
    "Profile",
    "ShuffleTest",
    "SpectralEmbedding",
    "TrainConfig",
    "aligned_partitions",
    "chance_level",
    "choose_k",
    "clusterability",
    "contiguous_labels",
    "contiguous_partition",
    "default_layers",
    "evaluate",
    "fit",
    "layer_matrix",
    "normalized_matrix",
    "pretrained",
    "profile",
    "random_baseline",
    "refine_partition",
    "reproduce",
    "scale_matched",
    "shuffle_test",
    "spectral_cocluster",
    "spectral_embedding",
    "sweep",
    "weight_layers",
]

if TYPE_CHECKING:  # what static tools and editors see; at run time __getattr__ loads these
    from .core.graph import aligned_partitions, default_layers, layer_matrix, weight_layers
    from .core.loss import ClusterabilityLoss
    from .core.metrics import chance_level, clusterability, random_baseline
    from .core.null import ShuffleTest, scale_matched, shuffle_test
    from .core.partition import Partition, contiguous_labels, contiguous_partition
    from .core.refine import refine_partition
    from .core.spectral import (
        SpectralEmbedding,
        choose_k,
        normalized_matrix,
        spectral_cocluster,
        spectral_embedding,
    )
    from .course.experiments import ExperimentResult, reproduce, sweep
    from .training.bimt import BIMTLoss
    from .training.profiles import Profile, profile
    from .training.train import History, TrainConfig, evaluate, fit
    from .training.zoo import Pretrained, pretrained


class _ShortNames(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Lets ``import modlib.viz`` and ``from modlib.models import X`` find the module's home.

    The short name is an alias: ``sys.modules["modlib.viz"] is modlib.course.viz``, never a second
    copy of the module.
    """

    @staticmethod
    def _home(fullname: str) -> str | None:
        parts = fullname.split(".")
        if parts[0] != __name__ or len(parts) < 2:
            return None
        home = SUBMODULES.get(parts[1])
        if home is None or home == parts[1]:
            return None
        return ".".join([__name__, home, *parts[2:]])

    def find_spec(self, fullname, path=None, target=None):  # noqa: D102
        home = self._home(fullname)
        return None if home is None else importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):  # noqa: D102
        return importlib.import_module(self._home(spec.name))

    def exec_module(self, module):  # noqa: D102  (already executed under its own name)
        pass


if not any(isinstance(f, _ShortNames) for f in sys.meta_path):
    sys.meta_path.insert(0, _ShortNames())


def __getattr__(name: str):
    """Load a sub-module or a re-exported name on first use (PEP 562)."""
    if name in SUBMODULES:
        value = importlib.import_module(f"{__name__}.{SUBMODULES[name]}")
    elif name in _NAMES:
        value = getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
    else:
        raise AttributeError(f"module 'modlib' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(SUBMODULES) | set(_NAMES))
