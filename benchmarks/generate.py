"""A realistic many-key event stream: Zipf key popularity, 8 numeric features, one concept per key."""

import json
import math
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


def _orthogonal(v: list[float], r: list[float]) -> list[float]:
    """``r`` less its part along ``v``, scaled to ``v``'s length: a direction at a right angle to ``v``."""
    along = sum(a * b for a, b in zip(r, v)) / sum(a * a for a in v)
    u = [b - along * a for a, b in zip(v, r)]
    scale = math.sqrt(sum(a * a for a in v) / sum(a * a for a in u))
    return [a * scale for a in u]


def shared_concept_stream(n_events: int, n_keys: int, seed: int = 42, exponent: float = 1.1, first_key: int = 0,
                          key_scale: float = 1.0, concept_seed: int = 0, start_ts: int = 1_700_000_000,
                          drift: float = 0.0):
    """Yield labelled events whose concept is one all keys share plus one of each key's own, with ``ts``.

    A model of all keys can learn only the shared part, a key's own model
    both, given the key's history: the case for a global model beside each
    key's. ``concept_seed`` fixes the concepts and ``seed`` the draws, so two
    streams with the same ``concept_seed`` and disjoint key ranges
    (``first_key``) share a concept but no key. Key popularity follows
    Zipf(``exponent``); ``ts`` is ``start_ts`` plus the event's index, in seconds.
    The shared concept turns steadily over the stream, by ``drift`` times a
    right angle (0: it never moves; 1: by the end it is orthogonal to where it
    started, of the same length), as the world does under a model trained
    once: each key keeps its own part on top of wherever it is.
    """
    rng = random.Random(seed)
    shared_rng = random.Random(f"{concept_seed}/shared")
    shared = [shared_rng.uniform(-1, 1) for _ in range(8)]
    moved = _orthogonal(shared, [shared_rng.uniform(-1, 1) for _ in range(8)])
    weights = [1 / (rank ** exponent) for rank in range(1, n_keys + 1)]
    keys = rng.choices(range(first_key, first_key + n_keys), weights=weights, k=n_events)
    concepts: dict[int, list[float]] = {}
    for i, key in enumerate(keys):
        if key not in concepts:
            own = random.Random(f"{concept_seed}/{key}")
            concepts[key] = [key_scale * own.uniform(-1, 1) for _ in shared]
        angle = drift * math.pi / 2 * i / n_events
        w = [math.cos(angle) * s + math.sin(angle) * m + k for s, m, k in zip(shared, moved, concepts[key])]
        x = {f"f{j}": rng.gauss(0, 1) for j in range(8)}
        y = sum(wj * xj for wj, xj in zip(w, x.values())) + rng.gauss(0, 0.3) > 0
        yield {"key": f"user-{key}", "id": f"e{i}", "ts": start_ts + i, "x": x, "y": y}
