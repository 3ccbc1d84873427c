"""Per-entity clustering of behaviour: ``--model examples/clusterer.py:model``."""

from river import cluster

model = cluster.KMeans(n_clusters=3, halflife=0.4, sigma=3, seed=0)
