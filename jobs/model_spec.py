"""Turning ``--model SPEC`` into the template every new key starts from.

This runs on the client, once, before any job is submitted: a bad spec is
refused here with a clear message. The template then travels to the workers
as bytes; a template defined in a ``file.py`` is pickled *by value*, so workers
never need to import that file.
"""

import hashlib
import importlib
import importlib.util
import pathlib
import sys

import cloudpickle
from river import base

from operators.bandits import is_policy
from operators.model_kinds import Kind, kind_of
from state.exceptions import ModelSpecError

__all__ = ["load_template"]


def load_template(spec: str) -> tuple[base.Estimator, Kind]:
    """Load the estimator named by ``spec`` and read its kind.

    Parameters
    ----------
    spec
        ``package.module:name``, ``path/to/file.py:name`` or ``path/to/model.pkl``.
        ``name`` is a river estimator (or bandit policy), or a callable that returns one when called
        without arguments. A ``file.py`` is registered with cloudpickle to travel
        by value.

    Returns
    -------
    tuple of (river.base.Estimator, Kind)
        The template every new key starts from, and what it is.

    Raises
    ------
    ModelSpecError
        If ``spec`` cannot be loaded, or does not give a river estimator of a
        kind riverflink serves; the message starts with the spec.

    Examples
    --------
    >>> template, kind = load_template("river.linear_model:LinearRegression")
    >>> type(template).__name__, kind.value
    ('LinearRegression', 'regressor')
    >>> load_template("river.linear_model:Nope")
    Traceback (most recent call last):
    ...
    state.exceptions.ModelSpecError: --model river.linear_model:Nope: river.linear_model has no attribute 'Nope'
    """
    if spec.endswith(".pkl"):
        obj = _load_pickle(spec)
    elif ":" in spec:
        location, _, name = spec.rpartition(":")
        module = _load_file(location) if location.endswith(".py") else _import(location)
        try:
            obj = getattr(module, name)
        except AttributeError as exc:
            raise ModelSpecError(f"--model {spec}: {location} has no attribute {name!r}") from exc
    else:
        raise ModelSpecError(
            f"--model {spec}: expected package.module:name, path/to/file.py:name or path/to/model.pkl"
        )
    if not isinstance(obj, base.Estimator) and not is_policy(obj):
        obj = _call_factory(spec, obj)
    try:
        return obj, kind_of(obj)
    except ModelSpecError as exc:
        raise ModelSpecError(f"--model {spec}: {exc}") from exc


def _load_pickle(spec: str):
    path = pathlib.Path(spec)
    if not path.is_file():
        raise ModelSpecError(f"--model {spec}: no such file")
    try:
        with path.open("rb") as file:
            return cloudpickle.load(file)
    except Exception as exc:
        raise ModelSpecError(f"--model {spec}: cannot unpickle ({type(exc).__name__}: {exc})") from exc


def _load_file(location: str):
    path = pathlib.Path(location).resolve()
    if not path.is_file():
        raise ModelSpecError(f"--model {location}: no such file")
    module_name = "riverflink_model_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise ModelSpecError(f"--model {location}: the file raised {type(exc).__name__}: {exc}") from exc
    cloudpickle.register_pickle_by_value(module)
    return module


def _import(location: str):
    try:
        return importlib.import_module(location)
    except ImportError as exc:
        raise ModelSpecError(f"--model {location}: cannot import ({exc})") from exc


def _call_factory(spec: str, factory):
    if not callable(factory):
        raise ModelSpecError(f"--model {spec}: a {type(factory).__name__} is neither a river estimator nor a callable")
    try:
        model = factory()
    except Exception as exc:
        raise ModelSpecError(f"--model {spec}: calling it raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(model, base.Estimator) and not is_policy(model):
        raise ModelSpecError(f"--model {spec}: calling it returned a {type(model).__name__}, not a river estimator")
    return model
