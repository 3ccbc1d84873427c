"""Keyed stateful operators: Flink adapters around Flink-free learning logic.

``learn_per_key`` (SPEC §8) is exported here as the SPEC spells it; it wires,
so it lives in ``jobs.learn_per_key`` and is imported only when asked for:
the operators themselves never import ``jobs``.
"""

__all__ = ["learn_per_key", "Learned"]


def __getattr__(name):
    if name in __all__:
        import jobs.learn_per_key

        return getattr(jobs.learn_per_key, name)
    raise AttributeError(f"module 'operators' has no attribute {name!r}")
