"""``riverflink run``: run the learning job, then print what a person reads after a bounded run.

The summary counts events, keys, the metric and dead letters from the
committed files of directory outputs; a Kafka output is only named.
"""

import collections
import sys

from jobs.cli.failures import EXIT_INTERRUPTED, report_job_failure
from jobs.cli.metric_reports import Spread, final_metrics
from jobs.cli.parser import settings_from_args
from jobs.cli.tables import labelled
from jobs.settings import OUTPUT_NAMES, Settings, kafka_topic_of
from state.destinations import read_records
from state.exceptions import RiverflinkError

__all__ = ["command", "summarize"]


def command(args) -> int:
    """Carry out ``riverflink run``; returns the exit status.

    Parameters
    ----------
    args
        The parsed ``run`` arguments.
    """
    settings = settings_from_args(args)  # before importing Flink: an argument error is reported in a tenth of a second
    from jobs.learn_job import run_job

    if not settings.bounded and not settings.detached and not args.quiet:
        source = f"Kafka ({', '.join(settings.kafka.topics)})" if settings.kafka.topics else "watched inputs"
        print(f"riverflink: learning from {source} until stopped (Ctrl-C)", file=sys.stderr)
    try:
        submitted = run_job(settings)
    except RiverflinkError:
        raise
    except KeyboardInterrupt:  # how a streaming run on the mini-cluster ends; the JVM goes with this process
        print("riverflink: stopped; outputs are committed up to the last completed checkpoint", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # the JVM's error: its root cause here, the whole trace in Flink's log
        return report_job_failure("job", exc)
    if settings.detached:
        print(submitted.get_job_id())
    elif not args.quiet:
        print(summarize(settings))
    return 0


def summarize(settings: Settings) -> str:
    """What a bounded run wrote, output by output.

    Parameters
    ----------
    settings
        The run that finished; its directory outputs are read back.
    """
    destinations = settings.outputs.destinations
    lines = ["riverflink run finished"]
    for name in OUTPUT_NAMES:
        if kafka_topic_of(destinations[name]) is not None:
            lines.append(labelled(name.replace("_", " "), f"-> {destinations[name]}"))
    files = {name: path for name, path in destinations.items() if path is not None and kafka_topic_of(path) is None}
    if "predictions" in files:
        count, keys = 0, set()
        for prediction in read_records(files["predictions"]):
            count += 1
            keys.add(prediction["key"])
        lines.append(labelled("predictions", f"{count:>8} events over {len(keys)} keys -> {files['predictions']}"))
    if "metrics" in files:
        for model, by_key in final_metrics(read_records(files["metrics"])).items():
            overall, spread = by_key.get(None), Spread.of(by_key)
            if model is not None:
                lines.append(f"  model {model}")
            if overall is not None:
                lines.append(labelled("metric", f"{overall['metric']} = {overall['value']:.4f} "
                                                f"over {overall['n']} labelled events"))
            if spread is not None:
                figures = f"min {spread.low:.4f}, median {spread.median:.4f}, max {spread.high:.4f}"
                lines.append(labelled("per key", f"{spread.keys} keys: {figures}"))
    if "dead_letters" in files:
        reasons = collections.Counter(d["reason"] for d in read_records(files["dead_letters"]))
        detail = ", ".join(f"{reason}: {count}" for reason, count in reasons.most_common()) or "none"
        lines.append(labelled("dead letters", f"{sum(reasons.values()):>8} ({detail}) -> {files['dead_letters']}"))
    if "events" in files:
        kinds = collections.Counter(e["event"] for e in read_records(files["events"]))
        detail = ", ".join(f"{kind}: {count}" for kind, count in sorted(kinds.items())) or "none"
        lines.append(labelled("events", f"{sum(kinds.values()):>8} ({detail}) -> {files['events']}"))
    if "models_out" in files:
        models = {s["key"] for s in read_records(files["models_out"]) if not s.get("template")}
        lines.append(labelled("models", f"{len(models):>8} keys -> {files['models_out']}"))
    return "\n".join(lines)
