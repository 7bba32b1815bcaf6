"""The method: weight graphs, partitions, clusterability, chance levels and nulls, spectral
co-clustering and the clusterability loss. Depends on torch only (and on :mod:`modlib.validate`)."""
