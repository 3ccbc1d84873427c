"""Example models, one per kind riverflink supports: ``--model examples/models.py:NAME``.

Each is an instance (every new key gets ``.clone()``) except ``forecaster``,
a zero-argument factory, to show both spec forms.
"""

import numbers

from river import anomaly, cluster, compose, linear_model, optim, preprocessing, time_series

# Per-entity classification: is this event fraudulent / will this user click?
classifier = preprocessing.StandardScaler() | linear_model.LogisticRegression(optimizer=optim.SGD(0.1))

# Per-entity regression: e.g. a chick's weight from its age (numeric features only).
regressor = (
    compose.SelectType(numbers.Number)
    | preprocessing.StandardScaler()
    | linear_model.LinearRegression(optimizer=optim.SGD(0.05), intercept_lr=0.5)
)

# Per-sensor anomaly scores; HalfSpaceTrees wants features in [0, 1].
anomaly_detector = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(n_trees=5, height=6, window_size=50, seed=42)

# Per-entity clustering of behaviour.
clusterer = cluster.KMeans(n_clusters=3, halflife=0.4, sigma=3, seed=0)


def forecaster():
    """A per-series one-step forecaster with exogenous features."""
    return time_series.SNARIMAX(p=2, d=0, q=1)
