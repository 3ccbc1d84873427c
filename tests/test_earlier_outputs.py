"""Two runs' outputs never mix: an earlier run's files are refused, cleared with --overwrite, or set apart on resume."""

import json
import pathlib

import pytest

from jobs.cli.run import summarize
from jobs.cli.run_tally import RunTally
from jobs.earlier_outputs import prepare_file_outputs
from jobs.settings import KafkaSettings, OutputSettings, Settings
from state.destinations import committed_files
from state.exceptions import SettingsError
from tests.test_cli import CHICKS, MODEL, riverflink, without_java

pytestmark = pytest.mark.unit

UUID = "2f77ab28-1f6c-4064-8793-41484901ae68"


def part(directory: pathlib.Path, prefix: str, n: int, records=(), in_progress=False) -> pathlib.Path:
    """A part file as FileSink names it, committed or in progress."""
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{prefix}-{UUID}-{n}.jsonl"
    path = directory / (f".{name}.inprogress.{UUID}" if in_progress else name)
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def outputs(out: pathlib.Path) -> OutputSettings:
    return OutputSettings(predictions=str(out / "predictions"), metrics=str(out / "metrics"),
                          dead_letters=str(out / "dead-letters"), models_out="kafka://models")


def test_new_and_empty_directories_and_kafka_outputs_are_taken(tmp_path):
    (tmp_path / "metrics").mkdir()
    part(tmp_path / "predictions", "predictions", 0, in_progress=True)  # a killed run committed nothing
    assert prepare_file_outputs(outputs(tmp_path)) == {
        "predictions": frozenset(), "metrics": frozenset(), "dead_letters": frozenset()}


def test_committed_files_of_an_earlier_run_refuse_the_run_naming_every_such_directory(tmp_path):
    part(tmp_path / "predictions", "predictions", 0, [{"key": "a"}])
    part(tmp_path / "metrics", "metrics", 0, [{"key": None}])
    with pytest.raises(SettingsError) as refused:
        prepare_file_outputs(outputs(tmp_path))
    message = str(refused.value)
    assert f"{tmp_path / 'predictions'}, {tmp_path / 'metrics'} already hold committed files" in message
    assert "--overwrite" in message and "\n" not in message
    assert len(committed_files(tmp_path / "predictions")) == 1  # nothing touched


def test_overwrite_clears_riverflinks_part_files_committed_and_in_progress_and_nothing_else(tmp_path):
    part(tmp_path / "predictions", "predictions", 0, [{"key": "a"}])
    part(tmp_path / "predictions", "predictions", 1, in_progress=True)
    (tmp_path / "predictions" / ".DS_Store").write_text("")
    assert prepare_file_outputs(outputs(tmp_path), overwrite=True)["predictions"] == frozenset()
    assert [p.name for p in (tmp_path / "predictions").iterdir()] == [".DS_Store"]


def test_overwrite_refuses_a_directory_that_holds_files_riverflink_did_not_write(tmp_path):
    ours = part(tmp_path / "predictions", "predictions", 0, [{"key": "a"}])
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "thesis.tex").write_text("")
    with pytest.raises(SettingsError, match="clears only riverflink's part files.*thesis.tex"):
        prepare_file_outputs(outputs(tmp_path), overwrite=True)
    assert ours.exists(), "nothing is removed when any directory is refused"


def test_a_resumed_run_keeps_earlier_files_and_its_summary_counts_only_its_own(tmp_path):
    earlier = part(tmp_path / "predictions", "predictions", 0, [{"key": "a"}, {"key": "b"}])
    part(tmp_path / "dead-letters", "dead-letters", 0, [{"reason": "bad_json"}])
    settings = Settings(model=MODEL, inputs=(CHICKS,), from_savepoint=str(tmp_path), outputs=outputs(tmp_path),
                        kafka=KafkaSettings(bootstrap="127.0.0.1:9092"))
    before = prepare_file_outputs(settings.outputs, resumed=True)
    assert before["predictions"] == frozenset({earlier})
    part(tmp_path / "predictions", "predictions", 1, [{"key": "c"}])  # what the resumed job commits
    tally = RunTally({name: settings.outputs.destinations[name] for name in before}, before)
    tally.update()
    summary = summarize(settings, tally, 1.0)
    assert "1 events over 1 keys" in summary
    assert "dead letters          0 (none)" in summary
    assert "models_out" not in summary and "-> kafka://models" in summary


def test_the_cli_refuses_a_second_run_into_the_same_out_before_any_job(tmp_path):
    part(tmp_path / "out" / "predictions", "predictions", 0, [{"key": "a"}])
    done = riverflink("run", "--model", MODEL, "--input", CHICKS, "--out", str(tmp_path / "out"), env=without_java())
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "already holds committed files of an earlier run" in lines[0], done.stderr


def test_evaluate_refuses_an_out_with_an_earlier_evaluation(tmp_path):
    part(tmp_path / "metrics", "metrics", 0, [{"key": None}])
    done = riverflink("evaluate", "--model", MODEL, "--input", CHICKS, "--out", str(tmp_path), env=without_java())
    assert done.returncode == 2 and "already holds committed files" in done.stderr, done.stderr
