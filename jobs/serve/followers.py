"""Following what a job writes to ``--models-out``, into the served models, in a thread of its own.

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

import orjson

from jobs.kafka_client import consumer
from jobs.serve.models import ServedModels, Snapshot
from jobs.settings import KafkaSettings
from state.destinations import committed_files

__all__ = ["Follower", "DirectoryFollower", "KafkaFollower"]

logger = logging.getLogger(__name__)


class Follower(threading.Thread):
    """A daemon thread that feeds snapshot records into ``served`` until :meth:`stop`.

    Parameters
    ----------
    served
        Where snapshots go.
    poll_seconds
        How long one look at the destination waits for something new.
    """

    def __init__(self, served: ServedModels, poll_seconds: float = 0.1):
        super().__init__(daemon=True, name=f"riverflink-{type(self).__name__}")
        self.served = served
        self.poll_seconds = poll_seconds
        self.loaded = threading.Event()  # what the destination held at start is in `served`
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
        """Offer one snapshot line; a line that is no snapshot is logged and counted, never fatal."""
        self.records += 1
        try:
            record = orjson.loads(line)
            if not isinstance(record, dict):
                raise ValueError(f"a JSON {type(record).__name__}, not a snapshot object")
            snapshot = Snapshot.from_record(record, received)
            if record.get("template"):
                self.served.offer_template(snapshot)
            elif isinstance(record.get("key"), str):
                self.served.offer(record["key"], snapshot)
            else:
                raise ValueError("a model snapshot needs a string 'key'")
        except (ValueError, orjson.JSONDecodeError) as exc:
            self.bad_records += 1
            logger.warning("skipped a record of %s that is no model snapshot: %s", self.describe(), exc)


class DirectoryFollower(Follower):
    """Follows a ``--models-out`` directory: every committed part file, read once, in name order.

    Parameters
    ----------
    destination
        The directory the job writes snapshots to; it may not exist yet.
    """

    def __init__(self, served: ServedModels, destination: str | pathlib.Path, poll_seconds: float = 0.1):
        super().__init__(served, poll_seconds)
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
    """Follows a ``kafka://TOPIC`` models destination from its first offsets, committed records only.

    Parameters
    ----------
    kafka
        The bootstrap servers and client properties.
    topic
        The models topic; a topic that does not exist yet is waited for (the job's sink creates it).
    """

    def __init__(self, served: ServedModels, kafka: KafkaSettings, topic: str, poll_seconds: float = 0.1):
        super().__init__(served, poll_seconds)
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
                    logger.info("loaded %d keys from %s", len(self.served), self.describe())
        finally:
            client.close()
