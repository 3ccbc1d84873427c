"""Following what a job writes, in a thread of its own: models, and the dashboard's metrics, events, dead letters.

A directory destination holds part files that FileSink commits on
checkpoints and never changes again: each new committed file is read once.
A ``kafka://`` destination is read from the start of every partition, committed
records only (the job writes snapshots in transactions); keyed by entity key
and compacted, the topic holds every key's latest snapshot, so a server that
starts rebuilds its models from it with no job running.

Either way the follower is *loaded* once it has read what the destination held
when it started (``GET /health`` answers 200 from then on), and it keeps
following until stopped.
"""

from __future__ import annotations

import logging
import pathlib
import threading
import time
from collections.abc import Callable

import orjson

from jobs.kafka_client import consumer
from jobs.settings import KafkaSettings
from state.destinations import committed_files

__all__ = ["Follower", "DirectoryFollower", "KafkaFollower"]

logger = logging.getLogger(__name__)


class Follower(threading.Thread):
    """A daemon thread that hands every JSON object record of a destination to ``accept`` until :meth:`stop`.

    Parameters
    ----------
    accept
        Takes ``(record, received)``, ``received`` being when the record was read (epoch seconds);
        raises ValueError for a record it cannot take, which is logged and counted, never fatal.
    poll_seconds
        How long one look at the destination waits for something new.
    """

    def __init__(self, accept: Callable[[dict, float], None], poll_seconds: float = 0.1):
        super().__init__(daemon=True, name=f"riverflink-{type(self).__name__}")
        self.accept = accept
        self.poll_seconds = poll_seconds
        self.loaded = threading.Event()  # what the destination held at start is accepted
        self.records = 0
        self.bad_records = 0
        self.error: BaseException | None = None  # what stopped the thread, for /health to report
        self._stopping = threading.Event()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop following and wait for the thread to end."""
        self._stopping.set()
        if self.is_alive():
            self.join(timeout)

    def run(self) -> None:
        try:
            self.follow()
        except BaseException as exc:
            self.error = exc
            logger.exception("following %s stopped", self.describe())
            raise

    def follow(self) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def take(self, line: bytes | str, received: float) -> None:
        """Offer one line; a line ``accept`` cannot take is logged and counted, never fatal."""
        self.records += 1
        try:
            record = orjson.loads(line)
            if not isinstance(record, dict):
                raise ValueError(f"a JSON {type(record).__name__}, not an object")
            self.accept(record, received)
        except ValueError as exc:  # orjson.JSONDecodeError is a ValueError too
            self.bad_records += 1
            logger.warning("skipped a record of %s: %s", self.describe(), exc)


class DirectoryFollower(Follower):
    """Follows an output directory: every committed part file, read once, in name order.

    Parameters
    ----------
    destination
        The directory the job writes to; it may not exist yet.
    """

    def __init__(self, accept: Callable[[dict, float], None], destination: str | pathlib.Path,
                 poll_seconds: float = 0.1):
        super().__init__(accept, poll_seconds)
        self.destination = pathlib.Path(destination)
        self._read: set[pathlib.Path] = set()

    def describe(self) -> str:
        return str(self.destination)

    def read_new_files(self) -> int:
        """Read the committed files not read yet; returns how many there were."""
        new = [path for path in committed_files(self.destination) if path not in self._read]
        for path in new:
            received = time.time()
            with path.open("rb") as lines:
                for line in lines:
                    if line.strip():
                        self.take(line, received)
            self._read.add(path)
        return len(new)

    def follow(self) -> None:
        while not self._stopping.is_set():
            self.read_new_files()
            self.loaded.set()
            self._stopping.wait(self.poll_seconds)


class KafkaFollower(Follower):
    """Follows a ``kafka://TOPIC`` destination from its first offsets, committed records only.

    Parameters
    ----------
    kafka
        The bootstrap servers and client properties.
    topic
        The topic; a topic that does not exist yet is waited for (the job's sink creates it).
    """

    def __init__(self, accept: Callable[[dict, float], None], kafka: KafkaSettings, topic: str,
                 poll_seconds: float = 0.1):
        super().__init__(accept, poll_seconds)
        self.kafka = kafka
        self.topic = topic

    def describe(self) -> str:
        return f"kafka://{self.topic} at {self.kafka.bootstrap}"

    def follow(self) -> None:
        from kafka import TopicPartition

        client = consumer(self.kafka, auto_offset_reset="earliest", client_id="riverflink-serve")
        try:
            partitions = None
            while partitions is None and not self._stopping.is_set():
                found = client.partitions_for_topic(self.topic)
                if found:
                    partitions = [TopicPartition(self.topic, p) for p in sorted(found)]
                else:  # nothing written yet: nothing to load
                    self.loaded.set()
                    self._stopping.wait(1.0)
            if partitions is None:
                return
            client.assign(partitions)
            client.seek_to_beginning(*partitions)
            ends = client.end_offsets(partitions)  # what "loaded" means: read up to here
            timeout_ms = int(self.poll_seconds * 1000)
            while not self._stopping.is_set():
                for batch in client.poll(timeout_ms=timeout_ms, max_records=10_000).values():
                    received = time.time()
                    for message in batch:
                        if message.value is not None:  # a tombstone of compaction: nothing to serve
                            self.take(message.value, received)
                if not self.loaded.is_set() and all(client.position(tp) >= end for tp, end in ends.items()):
                    self.loaded.set()
                    logger.info("loaded %d records from %s", self.records, self.describe())
        finally:
            client.close()
