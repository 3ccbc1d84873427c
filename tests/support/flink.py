"""Running the real job on Flink's embedded mini-cluster from a test, and reading what it committed."""

import dataclasses
import json

from jobs.cli.metric_reports import final_metrics
from jobs.learn_job import run_job
from jobs.settings import OUTPUT_NAMES, LifecycleSettings, OutputSettings, Settings, kafka_topic_of
from state.destinations import read_records
from state.snapshots import load_latest_models
from tests.support.kafka import read_topic


@dataclasses.dataclass
class Outputs:
    predictions: list[dict]
    metrics: list[dict]
    dead_letters: list[dict]
    snapshots: list[dict]
    models: dict
    events: list[dict] = dataclasses.field(default_factory=list)
    templates: list[dict] = dataclasses.field(default_factory=list)  # the models output's template records

    def predictions_by_id(self) -> dict[tuple[str, str], tuple]:
        return predictions_by_id(self.predictions)

    def final_metrics(self, model: str | None = None) -> dict:
        """key -> final metric record of the served predictions, or of ``model`` (a challenger run)."""
        return final_metrics(self.metrics).get(model, {})


def _committed(settings: Settings, name: str) -> list[dict]:
    destination = settings.outputs.destinations[name]
    topic = kafka_topic_of(destination)
    if topic is None:
        return list(read_records(destination))
    return [json.loads(record.value) for record in read_topic(settings.kafka.bootstrap, topic)]


def run(tmp_path, model: str, inputs, parallelism: int = 2, destinations: dict[str, str] | None = None,
        **options) -> Outputs:
    """Run the job and read back what it committed.

    Parameters
    ----------
    tmp_path
        Every output goes to a directory under it (``events`` only with a lifecycle, ``global_trace``
        only in ``destinations``), unless ``destinations`` names another.
    model, inputs, parallelism
        The ``Settings`` fields of the same names.
    destinations
        ``output name -> destination`` in place of the directories under ``tmp_path``.
    **options
        Further ``Settings`` fields: ``kafka=KafkaSettings(...)``, ``lifecycle=...``, ``tuning=...``, ``key_ttl``.
    """
    out = tmp_path / "out"
    placed = {name: str(out / name) for name in OUTPUT_NAMES}
    lifecycle = options.get("lifecycle", LifecycleSettings())
    if not lifecycle.challengers and not lifecycle.drift_detector and not lifecycle.global_model:
        del placed["events"]  # nothing to report
    del placed["global_trace"]  # an audit, written where a test asks for it
    settings = Settings(
        model=model,
        inputs=tuple(str(path) for path in inputs),
        parallelism=parallelism,
        checkpoint_interval=options.pop("checkpoint_interval", 1.0),
        outputs=OutputSettings(**{**placed, **(destinations or {})}),
        **options,
    )
    run_job(settings)
    snapshots = _committed(settings, "models_out")
    return Outputs(
        templates=[s for s in snapshots if s.get("template")],
        predictions=_committed(settings, "predictions"),
        metrics=_committed(settings, "metrics"),
        dead_letters=_committed(settings, "dead_letters"),
        snapshots=[s for s in snapshots if not s.get("template")],
        models={} if kafka_topic_of(settings.outputs.models_out) else load_latest_models(settings.outputs.models_out),
        events=[] if settings.outputs.events is None else _committed(settings, "events"),
    )


def predictions_by_id(predictions) -> dict[tuple[str, str], tuple]:
    """``(key, id) -> (prediction, model_version)`` of committed predictions; fails on a second one for an id."""
    by_id = {}
    for p in predictions:
        assert (p["key"], p["id"]) not in by_id, f"two predictions for {p['key']}/{p['id']}"
        by_id[(p["key"], p["id"])] = (p["prediction"], p["model_version"])
    return by_id


def expected_lifecycle_predictions(reference: dict) -> dict[tuple[str, str], tuple]:
    """``tests.support.reference.lifecycle_loop``'s served predictions, shaped as ``predictions_by_id``'s."""
    return {(key, event_id): (prediction, version)
            for key, result in reference.items() for event_id, prediction, version, _ in result.predictions}


def expected_predictions(reference: dict) -> dict[tuple[str, str], tuple]:
    """The reference's predictions as the job writes them (JSON round trip: dict keys become strings)."""
    return {
        (key, event_id): tuple(json.loads(json.dumps([prediction, version])))
        for key, result in reference.items()
        for event_id, prediction, version in result.predictions
    }
