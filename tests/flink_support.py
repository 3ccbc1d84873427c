"""Running the real job on Flink's embedded mini-cluster from a test, and reading what it committed."""

import dataclasses
import json

from jobs.learn_job import run_job
from jobs.settings import Settings
from state.destinations import read_records
from state.snapshots import load_latest_models


@dataclasses.dataclass
class Outputs:
    predictions: list[dict]
    metrics: list[dict]
    dead_letters: list[dict]
    snapshots: list[dict]
    models: dict

    def predictions_by_id(self) -> dict[tuple[str, str], tuple]:
        by_id = {}
        for p in self.predictions:
            assert (p["key"], p["id"]) not in by_id, f"two predictions for {p['key']}/{p['id']}"
            by_id[(p["key"], p["id"])] = (p["prediction"], p["model_version"])
        return by_id

    def final_metrics(self) -> dict:
        final = {}
        for record in self.metrics:
            known = final.get(record["key"])
            if known is None or record["n"] >= known["n"]:
                final[record["key"]] = record
        return final


def run(tmp_path, model: str, inputs, parallelism: int = 2, **options) -> Outputs:
    out = tmp_path / "out"
    settings = Settings(
        model=model,
        inputs=tuple(str(path) for path in inputs),
        predictions=str(out / "predictions"),
        metrics=str(out / "metrics"),
        dead_letters=str(out / "dead-letters"),
        models_out=str(out / "models"),
        parallelism=parallelism,
        checkpoint_interval=options.pop("checkpoint_interval", 1.0),
        **options,
    )
    run_job(settings)
    return Outputs(
        predictions=list(read_records(settings.predictions)),
        metrics=list(read_records(settings.metrics)),
        dead_letters=list(read_records(settings.dead_letters)),
        snapshots=list(read_records(settings.models_out)),
        models=load_latest_models(settings.models_out),
    )


def expected_predictions(reference: dict) -> dict[tuple[str, str], tuple]:
    """The reference's predictions as the job writes them (JSON round trip: dict keys become strings)."""
    return {
        (key, event_id): tuple(json.loads(json.dumps([prediction, version])))
        for key, result in reference.items()
        for event_id, prediction, version in result.predictions
    }
