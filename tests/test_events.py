"""The edge: raw lines to Events or dead letters with stable reasons."""

import json
import random
import re

import pytest

from operators.dead_letters import RAW_LIMIT, DeadLetter, Reason
from operators.events import Event, decode_event
from state.json_lines import parse_json
from tests.test_job_guarantees import BAD_RECORDS

pytestmark = pytest.mark.unit


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


def _typed(value):
    """``value`` with every leaf's type beside it: 1 and 1.0 and True are equal in Python, not here."""
    if isinstance(value, dict):
        return {name: _typed(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_typed(item) for item in value]
    return (type(value).__name__, repr(value))


NUMBERS = ["0", "-0", "-0.0", "0.1", "1e22", "1E-7", "5e-324", "1.7976931348623157e308", "2.2250738585072014e-308",
           "123456789012345678", "-999999999999999999", "9223372036854775807", "18446744073709551616",
           "123456789012345678901234567890", "0.30000000000000004", "1e400", "-1e400", "NaN", "Infinity", "-Infinity"]


@pytest.mark.parametrize("line", [
    *(f'{{"key": "k", "x": {{"f": {number}}}, "y": {number}}}' for number in NUMBERS),
    '{"key": "k", "key": 3}', '{"key": "caf\\u00e9 \\ud83d\\ude00 \\u2603", "x": {"\\n": true, "b": null}}',
    '{"key": "\\ud800 lone"}', '{"key": "a"} x', '[1, [2, {"a": []}]]', '"text"', "", "{", '{"a": 01}',
    '{"id": 123456789012345678901234567890, "ts": -98765432109876543210, "x": {"a": 1e19, "b": -1e19}}',
])
def test_the_fast_parser_reads_events_as_json_loads_does(line):
    try:
        expected = _typed(json.loads(line))
    except ValueError as exc:
        with pytest.raises(ValueError, match=re.escape(str(exc))):
            parse_json(line)
        return
    assert _typed(parse_json(line)) == expected


def test_the_fast_parser_reads_floats_to_the_last_bit():
    generator = random.Random(7)
    values = [generator.uniform(-1e6, 1e6) for _ in range(2000)] + [generator.gauss(0, 1e-5) for _ in range(2000)]
    line = json.dumps({"x": {f"f{i}": value for i, value in enumerate(values)}})
    assert _typed(parse_json(line)) == _typed(json.loads(line))
