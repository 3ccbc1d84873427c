"""How a key's model becomes bytes in Flink state, and back.

River makes no promise that a pickle written by one version loads in another
(0.25 cannot read older pickles at all), so every blob carries the state format
version and the river version that wrote it, and a mismatch fails loudly
instead of silently resetting or corrupting a model.

The payload is a standard pickle, written by ``state.attribute_pickle`` so that
restored models run as fast as built ones (model snapshots, mostly read to
predict, by the C pickler alone). The learner writes a key's state back after
every event, so the writer matters: the C pickler is about three times faster
than cloudpickle on a small river pipeline. cloudpickle takes over only for
what pickle cannot name by reference (classes and functions a worker only
has by value, lambdas) and wherever modules are registered to travel by value
(the client, for a ``file.py`` model spec): pickle would name those by a
module the workers cannot import. Both write the same stream format, and
``pickle.loads`` reads both.

Pickle names classes by module path, so a module of riverflink's whose
classes live in state (a key's ``KeyState``) keeps its old path in
``MOVED_MODULES`` when it moves: state in savepoints written before still
loads, through a slower unpickler used only when the fast one cannot find
such a module.
"""

import io
import pickle
import struct

import cloudpickle
import river

from state import attribute_pickle
from state.exceptions import StateError, StateFormatError, StateVersionError

__all__ = ["FORMAT_VERSION", "MOVED_MODULES", "dump_state", "load_state", "read_header"]

FORMAT_VERSION = 1
_MAGIC = b"RFLK"
# magic, format version, length of the river version string
_HEADER = struct.Struct(">4sHB")
# old module path -> where its classes live now
MOVED_MODULES = {"operators.learning": "operators.learning_step"}


class _MovedModulesUnpickler(pickle.Unpickler):
    def find_class(self, module_name, name):
        return super().find_class(MOVED_MODULES.get(module_name, module_name), name)


def dump_state(obj, fast_restore: bool = True) -> bytes:
    """Serialize ``obj`` (a model, or a key's whole state) into a versioned envelope.

    Parameters
    ----------
    obj
        Anything pickle or cloudpickle can write.
    fast_restore
        Write plain objects so that they come back as fast to use as built
        ones (``state.attribute_pickle``), for state the learner keeps
        learning with. False: the C pickler alone, about 40 % faster to
        write (and a little faster to read), for what is written often and
        mostly read to predict (model snapshots).

    Returns
    -------
    bytes
        The header (marker, ``FORMAT_VERSION``, the installed river version), then the pickle.

    Raises
    ------
    StateError
        If ``obj`` cannot be serialized.

    Examples
    --------
    >>> from river import linear_model
    >>> blob = dump_state(linear_model.LinearRegression())
    >>> blob[:4]
    b'RFLK'
    """
    payload = None
    if not cloudpickle.list_registry_pickle_by_value():
        try:
            dumps = attribute_pickle.dumps if fast_restore else pickle.dumps
            payload = dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, AttributeError, TypeError):  # something not importable by name
            payload = None
    if payload is None:
        try:
            payload = cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            msg = f"cannot serialize {type(obj).__name__}: {exc}"
            raise StateError(msg) from exc
    version = river.__version__.encode()
    return _HEADER.pack(_MAGIC, FORMAT_VERSION, len(version)) + version + payload


def read_header(blob: bytes) -> tuple[int, str, int]:
    """Return ``(format_version, river_version, payload_offset)`` of an envelope.

    Reads only the header, so it tells what wrote a blob even when it cannot be loaded here.

    Parameters
    ----------
    blob
        An envelope, as :func:`dump_state` writes it.

    Returns
    -------
    tuple of (int, str, int)
        The state format version, the river version that wrote it, and where the pickle starts.

    Raises
    ------
    StateFormatError
        If ``blob`` is not a riverflink envelope.

    Examples
    --------
    >>> import river
    >>> format_version, river_version, offset = read_header(dump_state([1, 2]))
    >>> format_version == FORMAT_VERSION, river_version == river.__version__
    (True, True)
    """
    if len(blob) < _HEADER.size:
        raise StateFormatError(f"state of {len(blob)} bytes is too short to be a riverflink envelope")
    magic, format_version, version_length = _HEADER.unpack_from(blob)
    if magic != _MAGIC:
        raise StateFormatError("state does not start with the riverflink envelope marker")
    start = _HEADER.size
    river_version = blob[start : start + version_length].decode()
    return format_version, river_version, start + version_length


def load_state(blob: bytes):
    """Restore an object written by :func:`dump_state`, refusing foreign versions.

    Parameters
    ----------
    blob
        An envelope, as :func:`dump_state` writes it.

    Returns
    -------
    object
        The restored object; a class of a module listed in ``MOVED_MODULES`` is found at its new path.

    Raises
    ------
    StateFormatError
        If ``blob`` is not a riverflink envelope, or one of another format version.
    StateVersionError
        If ``blob`` was written by another river version.
    StateError
        If the pickle cannot be read.

    Examples
    --------
    >>> from river import linear_model
    >>> model = load_state(dump_state(linear_model.LinearRegression(l2=0.1)))
    >>> model.l2
    0.1
    >>> load_state(b"RFLK")
    Traceback (most recent call last):
    ...
    state.exceptions.StateFormatError: state of 4 bytes is too short to be a riverflink envelope
    """
    format_version, river_version, offset = read_header(blob)
    if format_version != FORMAT_VERSION:
        msg = f"state format version {format_version} is not the supported version {FORMAT_VERSION}"
        raise StateFormatError(msg)
    if river_version != river.__version__:
        msg = (
            f"state was written by river {river_version} but river {river.__version__} is installed; "
            "install the same river version or retrain the models"
        )
        raise StateVersionError(msg)
    payload = memoryview(blob)[offset:]
    try:
        try:
            return pickle.loads(payload)
        except ModuleNotFoundError as exc:
            if exc.name not in MOVED_MODULES:
                raise
            return _MovedModulesUnpickler(io.BytesIO(payload)).load()
    except Exception as exc:
        raise StateError(f"cannot deserialize state written by river {river_version}: {exc}") from exc
