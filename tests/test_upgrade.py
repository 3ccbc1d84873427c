"""Upgrades keep the state: this code resumes from a savepoint an earlier version wrote (SPEC §4, issue 5).

``tests/fixtures/savepoint-format-<N>/`` holds a savepoint of a backfill of
the first two thirds of a stream, taken on a local cluster at parallelism 2
by the code of the day it was written (``tests/fixtures/make_savepoint.py``),
and the whole stream. Resuming from it at parallelism 3, with the rest of the
stream from Kafka, must continue every key's model, metric and model version
exactly where the backfill left them, as one plain-river pass over the whole
stream does. When this fails, users' savepoints fail too: keep operator uids,
state descriptor names and types, and the envelope readable, or bump the
state format and say so in the release notes.
"""

import json

import pytest

from jobs.cli.produce import publish
from jobs.settings import KafkaSettings
from state.envelope import FORMAT_VERSION
from tests.fixtures.make_savepoint import fixture_dir
from tests.support.flink import expected_predictions, run
from tests.support.kafka import new_topic
from tests.support.models import example
from tests.support.reference import river_loop, same_model

pytestmark = [pytest.mark.minicluster, pytest.mark.kafka]


def test_the_current_code_resumes_from_a_savepoint_of_an_earlier_version(kafka_bootstrap, tmp_path):
    fixture = fixture_dir(FORMAT_VERSION)
    about = json.loads((fixture / "fixture.json").read_text())
    lines = (fixture / "events.jsonl").read_text().splitlines()
    split = about["events_in_savepoint"]
    rest = tmp_path / "rest.jsonl"
    rest.write_text("".join(line + "\n" for line in lines[split:]))
    topic = new_topic(kafka_bootstrap, partitions=3)
    publish(kafka_bootstrap, topic, [str(rest)])

    outputs = run(tmp_path, about["model"], [], parallelism=3,
                  kafka=KafkaSettings(bootstrap=kafka_bootstrap, topics=(topic,), stop_at_latest=True),
                  from_savepoint=str(fixture / "savepoint"),
                  allow_non_restored_state=True)  # the backfill's file source is not in a Kafka job

    _, template, _, new_metric = example(about["kind"])
    expected, expected_overall = river_loop(lines, template, about["kind"], new_metric)
    resumed_ids = {json.loads(line)["id"] for line in lines[split:]}
    assert outputs.predictions_by_id() == {
        key_id: served for key_id, served in expected_predictions(expected).items() if key_id[1] in resumed_ids
    }
    final = outputs.final_metrics()
    probes = [json.loads(line)["x"] for line in lines[:40]]
    for key, result in expected.items():
        assert (final[key]["value"], final[key]["n"]) == (result.metric.get(), result.n), key
        assert same_model(outputs.models[key], result.model, probes), key
    assert final[None]["value"] == pytest.approx(expected_overall.get(), rel=1e-9)
    assert final[None]["n"] == len(lines)
    assert outputs.dead_letters == []
