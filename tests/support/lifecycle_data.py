"""Streams on which a key's best model is known: some keys suit a linear model, others do not; concepts that flip."""

import pathlib
import random

from river import compose, linear_model, naive_bayes, optim


def _product(x: dict) -> dict:
    return {"ab": x["a"] * x["b"]}


# Two models for these streams: one that sees a and b, one that sees only their product.
logistic = linear_model.LogisticRegression(optimizer=optim.SGD(0.5))
on_product = compose.FuncTransformer(_product) | linear_model.LogisticRegression(optimizer=optim.SGD(0.5))
CHAMPION = f"{pathlib.Path(__file__)}:logistic"
CHALLENGER = f"{pathlib.Path(__file__)}:on_product"
# A model that never forgets: after a drift it is slow to unlearn, the case for a reset.
gaussian_nb = naive_bayes.GaussianNB()
NEVER_FORGETS = f"{pathlib.Path(__file__)}:gaussian_nb"


def linear_and_xor_keys(n_keys: int = 8, n_events: int = 2400, seed: int = 3) -> list[dict]:
    """Half the keys (``lin*``) label by a line through the origin, half (``xor*``) by the sign of ``a * b``.

    ``logistic`` learns the first and cannot learn the second; ``on_product``
    learns the second and cannot learn the first.
    """
    rng = random.Random(seed)
    keys = [f"lin{i}" for i in range(n_keys // 2)] + [f"xor{i}" for i in range(n_keys - n_keys // 2)]
    events = []
    for i in range(n_events):
        key = rng.choice(keys)
        x = {"a": rng.uniform(-1, 1), "b": rng.uniform(-1, 1)}
        y = x["a"] + x["b"] > 0 if key.startswith("lin") else x["a"] * x["b"] > 0
        events.append({"key": key, "id": f"e{i}", "ts": 1_700_000_000 + i, "x": x, "y": y})
    return events


def flipping_concept(n_keys: int = 4, per_key: int = 600, flip_at: int = 300, seed: int = 5) -> list[dict]:
    """Each key labels by ``a > b`` for its first ``flip_at`` events, then by the opposite: an abrupt drift."""
    rng = random.Random(seed)
    counts = {f"k{i}": 0 for i in range(n_keys)}
    events = []
    while any(count < per_key for count in counts.values()):
        key = rng.choice([key for key, count in counts.items() if count < per_key])
        x = {"a": rng.uniform(-1, 1), "b": rng.uniform(-1, 1)}
        y = (x["a"] > x["b"]) != (counts[key] >= flip_at)
        events.append({"key": key, "id": f"e{len(events)}", "ts": 1_700_000_000 + len(events), "x": x, "y": y})
        counts[key] += 1
    return events
