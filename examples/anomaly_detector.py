"""Per-sensor anomaly scores: ``--model examples/anomaly_detector.py:model``.

HalfSpaceTrees wants features in [0, 1], hence the scaler.
"""

from river import anomaly, preprocessing

model = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(n_trees=5, height=6, window_size=50, seed=42)
