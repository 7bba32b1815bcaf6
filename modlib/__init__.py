"""modlib: modular training of neural networks for interpretability, the course library.

Weight graphs of layers, clusterability, spectral co-clustering and the clusterability loss
(Golechha et al. 2025, *Modular Training of Neural Networks aids Interpretability*), with the
training loop, data, models and experiments of the course. Notebooks write ``import modlib``.
"""

from . import data, exercises, experiments, toy, vision, viz, widgets  # noqa: F401  (modlib.viz …)
from .experiments import ExperimentResult, reproduce, sweep
from .graph import aligned_partitions, default_layers, layer_matrix, weight_layers
from .loss import ClusterabilityLoss
from .metrics import ShuffleTest, chance_level, clusterability, random_baseline, shuffle_test
from .partition import Partition, contiguous_labels, contiguous_partition
from .profiles import Profile, profile
from .spectral import SpectralEmbedding, normalized_matrix, spectral_cocluster, spectral_embedding
from .train import History, TrainConfig, evaluate, fit
from .zoo import Pretrained, pretrained

__version__ = "0.1.0"

__all__ = [
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
    "reproduce",
    "shuffle_test",
    "spectral_cocluster",
    "spectral_embedding",
    "sweep",
    "weight_layers",
]
