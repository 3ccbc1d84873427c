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


def shared_concept_stream(n_events: int, n_keys: int, seed: int = 42, exponent: float = 1.1, first_key: int = 0,
                          key_scale: float = 1.0, concept_seed: int = 0, start_ts: int = 1_700_000_000):
    """Yield labelled events whose concept is one all keys share plus one of each key's own, with ``ts``.

    A model of all keys can learn only the shared part, a key's own model
    both, given the key's history: the case for a global model beside each
    key's. ``concept_seed`` fixes the concepts and ``seed`` the draws, so two
    streams with the same ``concept_seed`` and disjoint key ranges
    (``first_key``) share a concept but no key. Key popularity follows
    Zipf(``exponent``); ``ts`` is ``start_ts`` plus the event's index, in seconds.
    """
    rng = random.Random(seed)
    shared_rng = random.Random(f"{concept_seed}/shared")
    shared = [shared_rng.uniform(-1, 1) for _ in range(8)]
    weights = [1 / (rank ** exponent) for rank in range(1, n_keys + 1)]
    keys = rng.choices(range(first_key, first_key + n_keys), weights=weights, k=n_events)
    concepts: dict[int, list[float]] = {}
    for i, key in enumerate(keys):
        w = concepts.get(key)
        if w is None:
            own = random.Random(f"{concept_seed}/{key}")
            w = concepts[key] = [s + key_scale * own.uniform(-1, 1) for s in shared]
        x = {f"f{j}": rng.gauss(0, 1) for j in range(8)}
        y = sum(wj * xj for wj, xj in zip(w, x.values())) + rng.gauss(0, 0.3) > 0
        yield {"key": f"user-{key}", "id": f"e{i}", "ts": start_ts + i, "x": x, "y": y}
