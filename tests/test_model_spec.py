"""``--model SPEC``: every accepted form, and a clear refusal for everything else."""

import subprocess
import sys
import textwrap

import cloudpickle
import pytest

from jobs.model_spec import load_template
from operators.model_kinds import Kind
from state.envelope import dump_state
from state.exceptions import ModelSpecError
from tests.support import datagen
from tests.support.flink import expected_predictions, run
from tests.support.models import EXAMPLES
from tests.support.reference import river_loop

CUSTOM_MODEL = textwrap.dedent(
    """
    from river import base, stats

    class MeanPerKey(base.Regressor):
        '''Predicts the running mean of y, shifted: a class only this file defines.'''

        def __init__(self, shift=1.0):
            self.shift = shift
            self.mean = stats.Mean()

        def learn_one(self, x, y):
            self.mean.update(y)

        def predict_one(self, x):
            return self.mean.get() + self.shift

    model = MeanPerKey(shift=0.5)
    """
)


@pytest.mark.unit
@pytest.mark.parametrize(
    "spec, kind",
    [
        ("river.linear_model:LinearRegression", Kind.REGRESSOR),  # a class: called with no arguments
        (f"{EXAMPLES}/classifier.py:model", Kind.CLASSIFIER),  # an instance
        (f"{EXAMPLES}/forecaster.py:model", Kind.FORECASTER),  # a factory function
        (f"{EXAMPLES}/anomaly_detector.py:model", Kind.ANOMALY_DETECTOR),
        (f"{EXAMPLES}/clusterer.py:model", Kind.CLUSTERER),
    ],
)
def test_accepted_specs(spec, kind):
    assert load_template(spec)[1] is kind


@pytest.mark.unit
def test_pickled_model(tmp_path):
    template, _ = load_template(f"{EXAMPLES}/regressor.py:model")
    path = tmp_path / "model.pkl"
    path.write_bytes(cloudpickle.dumps(template))
    loaded, kind = load_template(str(path))
    assert kind is Kind.REGRESSOR and loaded._get_params() == template._get_params()


@pytest.mark.unit
def test_file_model_travels_by_value(tmp_path):
    (tmp_path / "custom_model.py").write_text(CUSTOM_MODEL)
    template, kind = load_template(f"{tmp_path / 'custom_model.py'}:model")
    assert kind is Kind.REGRESSOR
    blob = tmp_path / "template.bin"
    blob.write_bytes(dump_state(template))
    # a fresh interpreter that cannot import custom_model.py restores and uses it
    script = (
        "import sys; from state.envelope import load_state; "
        f"m = load_state(open({str(blob)!r}, 'rb').read()).clone(); m.learn_one({{}}, 2.0); print(m.predict_one({{}}))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd="/", timeout=60,
                          env={"PYTHONPATH": str(EXAMPLES.parent), "PYTHONHASHSEED": "0"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2.5"


@pytest.mark.minicluster
def test_file_model_runs_on_flink_workers(tmp_path):
    (tmp_path / "custom_model.py").write_text(CUSTOM_MODEL)
    spec = f"{tmp_path / 'custom_model.py'}:model"
    lines = datagen.to_lines(datagen.many_keys("regressor", n_keys=8, n_events=200))
    outputs = run(tmp_path, spec, [datagen.write_lines(tmp_path / "in.jsonl", lines)])
    template, _ = load_template(spec)
    expected, _ = river_loop(lines, template, "regressor", lambda: None)
    assert outputs.predictions_by_id() == expected_predictions(expected)


@pytest.mark.unit
@pytest.mark.parametrize(
    "spec, message",
    [
        ("river.linear_model", "expected package.module:name"),
        ("no_such_package.models:model", "cannot import"),
        ("river.linear_model:NoSuchModel", "has no attribute 'NoSuchModel'"),
        ("river.preprocessing:StandardScaler", "transformer, not a classifier"),
        ("river:__version__", "neither a river estimator nor a callable"),
        ("json:dumps", "calling it raised TypeError"),
        ("missing/file.py:model", "no such file"),
        ("missing.pkl", "no such file"),
    ],
)
def test_refused_specs(spec, message):
    with pytest.raises(ModelSpecError, match=message):
        load_template(spec)


@pytest.mark.unit
def test_garbage_pickle_and_raising_file_are_refused(tmp_path):
    (tmp_path / "garbage.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ModelSpecError, match="cannot unpickle"):
        load_template(str(tmp_path / "garbage.pkl"))
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")
    with pytest.raises(ModelSpecError, match="RuntimeError: boom"):
        load_template(f"{tmp_path / 'broken.py'}:model")
