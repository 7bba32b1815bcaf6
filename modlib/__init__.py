"""modlib: modular training of neural networks for interpretability, the course library.

Weight graphs of layers, clusterability, spectral co-clustering and the clusterability loss
(Golechha et al. 2025, *Modular Training of Neural Networks aids Interpretability*).
"""

from .graph import aligned_partitions, default_layers, layer_matrix, weight_layers
from .loss import ClusterabilityLoss
from .metrics import ShuffleTest, chance_level, clusterability, random_baseline, shuffle_test
from .partition import Partition, contiguous_labels, contiguous_partition
from .spectral import SpectralEmbedding, normalized_matrix, spectral_cocluster, spectral_embedding

__version__ = "0.1.0"

__all__ = [
    "ClusterabilityLoss",
    "Partition",
    "ShuffleTest",
    "SpectralEmbedding",
    "aligned_partitions",
    "chance_level",
    "clusterability",
    "contiguous_labels",
    "contiguous_partition",
    "default_layers",
    "layer_matrix",
    "normalized_matrix",
    "random_baseline",
    "shuffle_test",
    "spectral_cocluster",
    "spectral_embedding",
    "weight_layers",
]
