"""``benchmarks/scale.py``: its data is what it says, and a small run of it completes with every key counted.

The small run is the whole benchmark (a local cluster of two TaskManagers,
RocksDB, a stop with a savepoint and a resume) on a few thousand keys: it
proves ``keys_live`` counts every key of a subtask restored from a
savepoint, and keeps the benchmark itself from rotting. Its speed is not
looked at.
"""

import collections
import re

import pytest

from benchmarks import scale


@pytest.mark.unit
def test_every_key_gets_its_events_scattered_over_the_stream():
    events = list(scale.scattered_stream(n_keys=500, per_key=3))
    per_key = collections.Counter(event["key"] for event in events)
    assert len(per_key) == 500 and set(per_key.values()) == {3}
    assert len({event["id"] for event in events}) == len(events)
    first_half = {event["key"] for event in events[:len(events) // 2]}
    assert len(first_half) > 400  # spread out, not key after key
    assert events == list(scale.scattered_stream(n_keys=500, per_key=3))  # the same data every run


@pytest.mark.cluster
def test_a_small_run_counts_every_key_before_and_after_a_restore(capsys):
    scale.main(["--keys", "3000", "--checkpoint-interval", "2", "--timeout", "300"])
    out = capsys.readouterr().out
    assert "9,000 events: 3,000 keys x 3" in out, out
    assert re.search(r"keys_live\s+3,000 after the last event; 3,000 after resuming", out), out
    assert re.search(r"checkpoints\s+\d+ completed, 0 failed", out), out
