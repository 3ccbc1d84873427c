"""riverflink inside a user's own PyFlink job (SPEC §8): their stream of event lines in, the learner's streams out.

Flink users already have pipelines: their sources (Kinesis, Pulsar, CDC,
sockets), enrichment and sinks. ``learn_per_key`` adds the graph
``riverflink run`` runs between its source and its sinks
(``jobs.learn_job.learned_streams``) to their stream, with the same options
and the same results, and prepares their environment for it
(``jobs.runtime.environment.prepare_environment``). ``operators`` exports it,
as the SPEC spells it.
"""

import dataclasses
import logging
import os

import pyflink.java_gateway
from pyflink.datastream import DataStream

from jobs.learn_job import learned_streams, load_models
from jobs.runtime.environment import prepare_environment
from jobs.runtime.jvm import WORKER_BOOT, expose_worker_environment
from jobs.settings import OUTPUT_NAMES, LifecycleSettings, Settings, TuningSettings
from state.exceptions import SettingsError

__all__ = ["Learned", "learn_per_key", "OPTIONS"]

logger = logging.getLogger(__name__)

# A user's job imports riverflink before it makes its environment, whose JVM inherits this process's
# environment: Flink's embedded interpreters then start with the worker boot (jobs/runtime/worker_boot),
# which imports river's native libraries before any task thread and gives each job its own code.
if pyflink.java_gateway._gateway is not None and str(WORKER_BOOT) not in os.environ.get("PYTHONPATH", ""):
    logger.warning("Flink's JVM started before riverflink was imported, so thread-mode workers start without "
                   "riverflink's worker boot: run `from operators import learn_per_key` before creating the environment")
expose_worker_environment()

# learn_per_key's options: riverflink run's learner options, named as its flags are (--label-ttl: label_ttl),
# each with the part of Settings it sets. Sources, sinks, checkpointing, parallelism and the state backend
# are the user's environment's.
OPTIONS = {
    "metric": None, "label_ttl": None, "arms": None, "key_ttl": None, "execution_mode": None,
    "challengers": "lifecycle", "warm_start": "lifecycle", "promotion_window": "lifecycle",
    "promotion_margin": "lifecycle", "drift_detector": "lifecycle", "on_drift": "lifecycle",
    "key_cache_mb": "tuning", "batch_lines": "tuning", "batch_delay": "tuning", "profile": "tuning",
    "metrics_interval": "tuning", "metrics_every": "tuning", "snapshot_interval": "tuning",
}


@dataclasses.dataclass(frozen=True)
class Learned:
    """The learner's output streams, each of JSON lines as ``riverflink run`` writes them (SPEC §3).

    ``metrics`` is None for a kind without a metric (anomaly detectors); ``events``
    (promotions and drifts) stays empty without challengers or a drift detector.
    """

    predictions: DataStream
    metrics: DataStream | None
    dead_letters: DataStream
    models: DataStream
    events: DataStream


def settings_of(model: str, options: dict) -> Settings:
    """``Settings`` for ``learn_per_key(..., model=model, **options)``.

    Examples
    --------
    >>> settings = settings_of("m.py:model", {"label_ttl": 60.0, "warm_start": True, "batch_lines": 64})
    >>> settings.label_ttl, settings.lifecycle.warm_start, settings.tuning.batch_lines
    (60.0, True, 64)
    >>> settings_of("m.py:model", {"label_tll": 60.0})
    Traceback (most recent call last):
    ...
    state.exceptions.SettingsError: learn_per_key has no option label_tll; its options: ...
    """
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise SettingsError(f"learn_per_key has no option {', '.join(unknown)}; its options: {', '.join(OPTIONS)}")
    parts = {None: {}, "lifecycle": {}, "tuning": {}}
    for name, value in options.items():
        parts[OPTIONS[name]][name] = tuple(value) if name == "challengers" else value
    return Settings(model=model, own_stream=True, lifecycle=LifecycleSettings(**parts["lifecycle"]),
                    tuning=TuningSettings(**parts["tuning"]), **parts[None])


def learn_per_key(lines: DataStream, model: str, **options) -> Learned:
    """One river model per key, learned from ``lines`` in the stream's own job.

    Parameters
    ----------
    lines
        The user's stream of event JSON text (STRING), one event per record, from any source.
    model
        The model spec, as ``riverflink run --model`` takes it (``file.py:name``, ``package.module:name``).
    **options
        ``riverflink run``'s learner options by name: ``metric``, ``label_ttl``, ``key_ttl``, ``challengers``,
        ``warm_start``, ``promotion_window``, ``drift_detector``, ``snapshot_interval``, ... (``OPTIONS``).

    Returns
    -------
    Learned
        The output streams, for the user to send anywhere.

    Raises
    ------
    RiverflinkError
        An unknown option, a model that cannot be loaded, a metric or lifecycle that does not fit it,
        or an environment the learner cannot run in (BATCH mode, another Python execution mode).
    """
    settings = settings_of(model, options)
    templates, kind, metric = load_models(settings)
    prepare_environment(lines.get_execution_environment(), settings)
    wanted = [name for name in OUTPUT_NAMES if name != "global_trace"]  # an audit of the CLI's
    streams = learned_streams(lines, settings, templates, kind, metric, wanted)
    return Learned(predictions=streams["predictions"], metrics=streams.get("metrics"),
                   dead_letters=streams["dead_letters"], models=streams["models_out"], events=streams["events"])
