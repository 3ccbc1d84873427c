"""Latency or throughput: the few settings that trade one for the other, chosen together (``--profile``).

A prediction waits at three places that exist to batch work: Flink's
network buffers (flushed when full or after the buffer timeout, 100 ms by
Flink's default), the learner's batch of lines (``--batch-delay``), and the
producer behind a ``kafka://`` output (``linger.ms``, 5 ms by Kafka's client
default). Short waits cost throughput when the job is saturated, as a
backfill is; a stream below the job's capacity pays only the waits. So a
run that streams (Kafka without ``--kafka-stop-at-latest``, or watched
files) gets the latency profile and a bounded run the throughput profile,
unless ``--profile`` says otherwise. Figures: docs/performance.md#latency.
"""

import dataclasses

__all__ = ["Profile", "PROFILES", "PROFILE_NAMES"]


@dataclasses.dataclass(frozen=True)
class Profile:
    """One trade of latency against throughput; ``--batch-delay``, ``--flink-option`` and ``--kafka-property`` override it."""

    name: str
    buffer_timeout: str  # Flink's execution.buffer-timeout.interval: how long a partly filled network buffer waits
    batch_delay: float  # seconds a line waits at most for the learner's batch to fill
    sink_linger_ms: int | None  # linger.ms of the producers behind kafka:// outputs; None: the Kafka client's


PROFILES = {
    # At 200 events/s from Kafka to Kafka, at-least-once: p99 12 ms, against 119 ms with the throughput profile.
    "latency": Profile("latency", buffer_timeout="1 ms", batch_delay=0.001, sink_linger_ms=0),
    # Flink's and Kafka's defaults, and batches of lines that fill even at a few thousand events/s.
    "throughput": Profile("throughput", buffer_timeout="100 ms", batch_delay=0.01, sink_linger_ms=None),
}
PROFILE_NAMES = ("auto", *PROFILES)  # auto: latency for a run that streams, throughput for a bounded one
