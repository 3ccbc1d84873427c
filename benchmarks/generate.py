"""A realistic many-key event stream: Zipf key popularity, 8 numeric features, one concept per key."""

import json
import random


def zipf_stream(n_events: int, n_keys: int, seed: int = 42, exponent: float = 1.1):
    """Yield labelled classification events; key popularity follows Zipf(``exponent``)."""
    rng = random.Random(seed)
    weights = [1 / (rank ** exponent) for rank in range(1, n_keys + 1)]
    keys = rng.choices(range(n_keys), weights=weights, k=n_events)
    concepts: dict[int, list[float]] = {}
    for i, key in enumerate(keys):
        w = concepts.get(key)
        if w is None:
            w = concepts[key] = [random.Random(seed * 1_000_003 + key).uniform(-1, 1) for _ in range(8)]
        x = {f"f{j}": rng.gauss(0, 1) for j in range(8)}
        y = sum(wj * xj for wj, xj in zip(w, x.values())) + rng.gauss(0, 0.3) > 0
        yield {"key": f"user-{key}", "id": f"e{i}", "x": x, "y": y}


def write(path, n_events: int, n_keys: int, seed: int = 42) -> None:
    with open(path, "w") as file:
        for event in zipf_stream(n_events, n_keys, seed):
            file.write(json.dumps(event) + "\n")
