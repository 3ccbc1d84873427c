"""Per-series one-step forecasts with exogenous features: ``--model examples/forecaster.py:model``.

A zero-argument factory rather than an instance, to show that spec form.
"""

from river import time_series


def model():
    return time_series.SNARIMAX(p=2, d=0, q=1)
