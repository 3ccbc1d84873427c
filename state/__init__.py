"""Model state: the versioned envelope, state descriptors, snapshot loading."""

from state.snapshots import load_latest_models

__all__ = ["load_latest_models"]
