"""What a bounded run's local directory outputs committed, counted file by file while the job still runs.

FileSink commits a part file once (on a checkpoint, and at the end of the
input) and never changes it again, so the summary after ``riverflink run``
can read each file as soon as it appears instead of reading every output
after the job has ended: at 400,000 events that left the command waiting
half a second on the files, now it waits on those of the last checkpoint
only. The counts still come from committed files, not from Flink's
accumulators or metrics: those count per task attempt, so after a restart
they would miss what the failed attempt committed or count what it did twice.
"""

import collections
import contextlib
import logging
import pathlib
import threading
from collections.abc import Collection, Iterator, Mapping

from jobs.cli.metric_reports import fold_final_metrics
from state.destinations import committed_files, read_file_records

__all__ = ["RunTally"]

logger = logging.getLogger(__name__)

FOLLOW_INTERVAL_S = 0.5  # how often a followed run's outputs are looked at for newly committed files


class RunTally:
    """Counts over the committed records of a run's local directory outputs, each file read once.

    Parameters
    ----------
    destinations
        ``output name -> directory`` of the outputs to count (``predictions``, ``metrics``,
        ``dead_letters``, ``events``, ``models_out``; others are ignored).
    earlier
        ``output name -> committed files before the run`` (``jobs.earlier_outputs.prepare_file_outputs``):
        an earlier run's, never counted.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (out / "predictions-0-0.jsonl").write_text('{"key": "a"}\\n{"key": "b"}\\n{"key": "a"}\\n')
    >>> tally = RunTally({"predictions": out}, {"predictions": frozenset()})
    >>> tally.update()
    >>> tally.predictions, len(tally.prediction_keys)
    (3, 2)
    """

    def __init__(self, destinations: Mapping[str, str | pathlib.Path], earlier: Mapping[str, Collection[pathlib.Path]]):
        self.destinations = dict(destinations)
        self._read = {name: set(earlier.get(name, ())) for name in self.destinations}
        self.predictions = 0
        self.prediction_keys: set = set()
        self.final_metrics: dict = {}  # as jobs.cli.metric_reports.final_metrics gives it
        self.dead_letter_reasons: collections.Counter = collections.Counter()
        self.event_kinds: collections.Counter = collections.Counter()
        self.model_sizes: dict = {}  # key -> (model_version, bytes) of its latest model snapshot

    def update(self) -> None:
        """Count the files committed since the last update."""
        for name, destination in self.destinations.items():
            for path in committed_files(destination):
                if path not in self._read[name]:
                    self._count(name, read_file_records(path))
                    self._read[name].add(path)

    def _count(self, name: str, records: Iterator[dict]) -> None:
        if name == "predictions":
            for prediction in records:
                self.predictions += 1
                self.prediction_keys.add(prediction["key"])
        elif name == "metrics":
            fold_final_metrics(self.final_metrics, records)
        elif name == "dead_letters":
            self.dead_letter_reasons.update(dead["reason"] for dead in records)
        elif name == "events":
            self.event_kinds.update(event["event"] for event in records)
        elif name == "models_out":
            for snapshot in records:
                if not snapshot.get("template"):
                    known = self.model_sizes.get(snapshot["key"])
                    if known is None or snapshot["model_version"] >= known[0]:
                        self.model_sizes[snapshot["key"]] = (snapshot["model_version"], _decoded_size(snapshot["model"]))

    @property
    def model_bytes_per_key(self) -> float | None:
        """The mean size of each key's latest model snapshot; None without any."""
        if not self.model_sizes:
            return None
        return sum(size for _, size in self.model_sizes.values()) / len(self.model_sizes)

    @contextlib.contextmanager
    def following(self, interval: float = FOLLOW_INTERVAL_S):
        """Count newly committed files every ``interval`` seconds in a thread while the block runs, then the rest.

        The job runs in other processes (its JVM, its Python workers), so this
        process has nothing else to do meanwhile. When the block raises, the
        thread stops and the error goes on; when counting raised, that error is
        raised once the block is done.
        """
        stop, failures = threading.Event(), []

        def follow():
            try:
                while not stop.wait(interval):
                    self.update()
            except BaseException as failure:  # raised again by the main thread below
                failures.append(failure)

        thread = threading.Thread(target=follow, name="riverflink-run-tally", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()
        if failures:
            raise failures[0]
        self.update()


def _decoded_size(text: str) -> int:
    """How many bytes the base64 ``text`` holds.

    >>> import base64
    >>> [_decoded_size(base64.b64encode(b"x" * n).decode()) for n in (0, 1, 2, 3, 4)]
    [0, 1, 2, 3, 4]
    """
    return len(text) * 3 // 4 - text[-2:].count("=")
