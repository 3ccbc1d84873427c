"""The run summary's counts: every committed file read exactly once, while the job runs and after it."""

import threading

import pytest

from jobs.cli.metric_reports import final_metrics
from jobs.cli.run_tally import RunTally
from tests.test_earlier_outputs import part

pytestmark = pytest.mark.unit


def tally_of(out, earlier=None) -> RunTally:
    names = ("predictions", "metrics", "dead_letters", "events", "models_out")
    earlier = earlier or {}
    return RunTally({name: out / name for name in names}, {name: earlier.get(name, frozenset()) for name in names})


def test_each_output_is_counted_from_committed_files_only_and_each_file_once(tmp_path):
    tally = tally_of(tmp_path)
    part(tmp_path / "predictions", "predictions", 0, [{"key": "a"}, {"key": "b"}])
    part(tmp_path / "predictions", "predictions", 1, [{"key": "c"}], in_progress=True)
    tally.update()
    tally.update()  # nothing new: nothing counted twice
    assert (tally.predictions, tally.prediction_keys) == (2, {"a", "b"})
    part(tmp_path / "predictions", "predictions", 1, [{"key": "a"}])  # committed on the next checkpoint
    part(tmp_path / "dead_letters", "dead-letters", 0, [{"reason": "bad_json"}, {"reason": "bad_json"}])
    part(tmp_path / "events", "events", 0, [{"event": "drift"}, {"event": "promotion"}])
    part(tmp_path / "models_out", "models-out", 0, [
        {"key": "", "template": True, "model_version": 0, "model": "AAAA"},
        {"key": "a", "model_version": 9, "model": "AAAAAA=="},  # 4 bytes: the latest of key a
        {"key": "a", "model_version": 3, "model": "AA=="},  # an older one, in a later file of another subtask
        {"key": "b", "model_version": 1, "model": "AAAAAAAA"},  # 6 bytes
    ])
    tally.update()
    assert (tally.predictions, tally.prediction_keys) == (3, {"a", "b"})
    assert tally.dead_letter_reasons == {"bad_json": 2}
    assert tally.event_kinds == {"drift": 1, "promotion": 1}
    assert tally.model_sizes == {"a": (9, 4), "b": (1, 6)} and tally.model_bytes_per_key == 5


def test_metrics_folded_file_by_file_equal_the_final_metrics_of_all_records(tmp_path):
    records = [{"key": "a", "n": 1, "value": 0.5}, {"key": None, "n": 1, "value": 0.5},
               {"key": "a", "n": 3, "value": 0.7}, {"key": None, "n": 4, "value": 0.6}, {"key": "a", "n": 2, "value": 0.1}]
    tally = tally_of(tmp_path)
    for n, record in enumerate(records):
        part(tmp_path / "metrics", "metrics", n, [record])
        tally.update()
    assert tally.final_metrics == final_metrics(records)


def test_an_earlier_runs_files_are_never_counted(tmp_path):
    earlier = part(tmp_path / "predictions", "predictions", 0, [{"key": "old"}])
    part(tmp_path / "predictions", "predictions", 1, [{"key": "new"}])
    tally = tally_of(tmp_path, {"predictions": frozenset({earlier})})
    tally.update()
    assert tally.prediction_keys == {"new"}


def test_following_counts_files_committed_during_the_block_and_the_rest_at_its_end(tmp_path):
    tally = tally_of(tmp_path)
    counted = threading.Event()
    with tally.following(interval=0.01):
        part(tmp_path / "predictions", "predictions", 0, [{"key": "a"}])
        for _ in range(500):  # the thread counts the first checkpoint's file while the job goes on
            if tally.predictions == 1:
                counted.set()
                break
            threading.Event().wait(0.01)
        part(tmp_path / "predictions", "predictions", 1, [{"key": "b"}])  # the end of the input
    assert counted.is_set(), "nothing was counted while the block ran"
    assert (tally.predictions, tally.prediction_keys) == (2, {"a", "b"})


def test_following_raises_what_counting_raised_once_the_block_is_done(tmp_path):
    tally = tally_of(tmp_path)
    (tmp_path / "predictions").mkdir()
    (tmp_path / "predictions" / "predictions-0-0.jsonl").write_text("{not json\n")
    with pytest.raises(ValueError):
        with tally.following(interval=0.01):
            threading.Event().wait(0.1)


def test_following_lets_the_blocks_own_error_through_and_stops_counting(tmp_path):
    tally = tally_of(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        with tally.following(interval=0.01):
            raise KeyboardInterrupt
    assert not any(thread.name == "riverflink-run-tally" for thread in threading.enumerate())
    part(tmp_path / "predictions", "predictions", 0, [{"key": "a"}])
    assert tally.predictions == 0, "no final count after a failed block"
