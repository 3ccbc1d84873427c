"""The one frozen, validated description of a run. Everything downstream trusts it."""

import dataclasses
import pathlib

from state.exceptions import SettingsError

__all__ = ["Settings", "STATE_BACKENDS", "EXECUTION_MODES", "OUTPUT_NAMES"]

STATE_BACKENDS = ("hashmap", "rocksdb")
EXECUTION_MODES = ("thread", "process")
OUTPUT_NAMES = ("predictions", "metrics", "dead_letters", "models_out")


@dataclasses.dataclass(frozen=True)
class Settings:
    """A validated run configuration (see ``riverflink run --help`` for each field)."""

    model: str
    inputs: tuple[str, ...]
    predictions: str | None = None
    metrics: str | None = None
    dead_letters: str | None = None
    models_out: str | None = None
    parallelism: int = 1
    checkpoint_interval: float = 10.0
    checkpoint_dir: str | None = None
    state_backend: str = "hashmap"
    metric: str | None = None
    label_ttl: float | None = None
    metrics_interval: float = 10.0
    snapshot_interval: float = 60.0
    execution_mode: str = "thread"
    job_name: str = "riverflink"

    def __post_init__(self):
        if not self.inputs:
            raise SettingsError("no input: give at least one --input file or directory")
        for path in self.inputs:
            if not pathlib.Path(path).exists():
                raise SettingsError(f"--input {path}: no such file or directory")
        if self.parallelism < 1:
            raise SettingsError(f"--parallelism must be at least 1, not {self.parallelism}")
        for name in ("checkpoint_interval", "metrics_interval", "snapshot_interval", "label_ttl"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise SettingsError(f"--{name.replace('_', '-')} must be positive, not {value}")
        if self.state_backend not in STATE_BACKENDS:
            raise SettingsError(f"--state-backend must be one of {', '.join(STATE_BACKENDS)}, not {self.state_backend!r}")
        if self.execution_mode not in EXECUTION_MODES:
            raise SettingsError(f"--execution-mode must be one of {', '.join(EXECUTION_MODES)}, not {self.execution_mode!r}")
        outputs = [path for path in self.outputs.values() if path is not None]
        if len(set(outputs)) != len(outputs):
            raise SettingsError("two outputs share one destination; give each its own")
        for path in outputs + [self.checkpoint_dir]:
            if path is not None and pathlib.Path(path).is_file():
                raise SettingsError(f"{path} is a file; an output or checkpoint destination must be a directory")

    @property
    def outputs(self) -> dict[str, str | None]:
        return {name: getattr(self, name) for name in OUTPUT_NAMES}

    @staticmethod
    def ms(seconds: float | None) -> int | None:
        return None if seconds is None else max(1, int(round(seconds * 1000)))
