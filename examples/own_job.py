"""riverflink inside your own PyFlink job: your source, ``learn_per_key``, your sinks.

    python examples/own_job.py OUT_DIR [--events N] [--parallelism P]

The source is one riverflink does not offer: Flink's number sequence turned
into sensor readings by a map, a stand-in for any connector (Kinesis,
Pulsar, CDC, a socket). Every sensor's reading is predicted at once; its
label (whether the sensor alarmed) arrives five readings of the stream
later, as labels do. The outputs go to the job's own FileSinks.
"""

import argparse
import json
import math
import pathlib

from pyflink.common import Encoder, Types, WatermarkStrategy
from pyflink.datastream import CheckpointingMode, StreamExecutionEnvironment
from pyflink.datastream.connectors.file_system import FileSink
from pyflink.datastream.connectors.number_seq import NumberSequenceSource

from operators import learn_per_key

SENSORS = 12
LABEL_DELAY = 5  # a reading's label comes with the reading this many later


def reading(b: int) -> dict:
    """Reading ``b``: a sensor, two measurements and whether it alarmed; each sensor alarms by its own rule."""
    sensor = b % SENSORS
    heat, vibration = math.sin(b * 0.37) * 3, math.cos(b * 0.11 + sensor) * 3
    alarmed = heat * math.cos(sensor) + vibration * math.sin(sensor) > 0.5
    return {"key": f"sensor-{sensor}", "id": f"r{b}", "x": {"heat": heat, "vibration": vibration}, "y": alarmed}


def event_line(n: int) -> str:
    """Event ``n`` of the stream: even ``n`` a reading without its label, odd ``n`` an earlier reading's label."""
    b = n // 2
    if n % 2 == 0:
        event = reading(b)
        del event["y"]
        return json.dumps(event)
    labelled = reading(b - LABEL_DELAY) if b >= LABEL_DELAY else None
    if labelled is None:  # nothing to label yet: a reading that comes with its label
        return json.dumps(reading(-1 - b))
    return json.dumps({"key": labelled["key"], "id": labelled["id"], "y": labelled["y"]})


def build(env: StreamExecutionEnvironment, out: pathlib.Path, events: int) -> None:
    """The job: readings from a number sequence -> learn_per_key -> FileSinks under ``out``."""
    numbers = env.from_source(NumberSequenceSource(0, events - 1), WatermarkStrategy.no_watermarks(), "sequence")
    # One reader: each sensor's readings and labels stay in order on their way to its model.
    lines = numbers.set_parallelism(1).map(event_line, output_type=Types.STRING()).set_parallelism(1)
    learned = learn_per_key(lines, "examples/classifier.py:model", metric="Accuracy", label_ttl=600.0)
    for name in ("predictions", "metrics", "dead_letters"):
        sink = FileSink.for_row_format(str(out / name), Encoder.simple_string_encoder()).build()
        getattr(learned, name).sink_to(sink)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--parallelism", type=int, default=2)
    args = parser.parse_args(argv)
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(args.parallelism)
    env.enable_checkpointing(2_000, CheckpointingMode.EXACTLY_ONCE)
    build(env, args.out.resolve(), args.events)
    env.execute("own job with learn_per_key")


if __name__ == "__main__":
    main()
