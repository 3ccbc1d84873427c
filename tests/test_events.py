"""The edge: raw lines to Events or dead letters with stable reasons."""

import json

import pytest

from operators.dead_letters import RAW_LIMIT, DeadLetter, Reason
from operators.events import Event, decode_event
from tests.test_job_guarantees import BAD_RECORDS


@pytest.mark.parametrize("line, reason", [r for r in BAD_RECORDS if r[1] not in (Reason.UNKNOWN_ID, Reason.MODEL_ERROR)])
def test_bad_records_are_rejected_with_their_reason(line, reason):
    decoded = decode_event(line)
    assert isinstance(decoded, DeadLetter)
    assert decoded.reason == reason and decoded.raw == line and decoded.detail


def test_a_record_without_a_value_is_a_dead_letter():
    decoded = decode_event(None)  # what a Kafka tombstone arrives as
    assert isinstance(decoded, DeadLetter) and decoded.reason == Reason.NO_VALUE and decoded.raw == ""


def test_integer_key_becomes_its_decimal_string_and_nulls_are_missing_features():
    event = decode_event('{"key": 42, "id": 7, "x": {"a": 1, "b": null, "c": "red", "d": false}, "y": 2.5}')
    assert event == Event(key="42", x={"a": 1, "c": "red", "d": False}, y=2.5, id="7", ts=None, raw=event.raw)


def test_timestamps_as_epoch_seconds_or_iso_8601():
    assert decode_event('{"key": "a", "x": {}, "ts": 1700000000.5}').ts == 1700000000.5
    assert decode_event('{"key": "a", "x": {}, "ts": "2023-11-14T22:13:20Z"}').ts == 1700000000.0
    assert decode_event('{"key": "a", "x": {}, "ts": "2023-11-14T23:13:20+01:00"}').ts == 1700000000.0


def test_label_only_and_predict_only_events():
    assert decode_event('{"key": "a", "id": "1", "y": true}').is_label_only
    assert not decode_event('{"key": "a", "id": "1", "x": {"f": 1}}').is_label_only


def test_dead_letter_keeps_the_key_when_it_could_be_read_and_truncates_raw():
    decoded = decode_event(json.dumps({"key": "k", "x": {"f": float("nan")}, "pad": "z" * (3 * RAW_LIMIT)}))
    record = json.loads(decoded.to_json())
    assert record["key"] == "k" and record["reason"] == Reason.NON_FINITE
    assert len(record["raw"]) == RAW_LIMIT


def test_reason_codes_are_all_listed():
    assert {reason for _, reason in BAD_RECORDS} <= Reason.ALL
