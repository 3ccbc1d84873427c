"""``riverflink run``: run the learning job, then print what a person reads after a bounded run.

The summary counts events, keys, the metric and dead letters from the
committed files of directory outputs, only those this run added; a Kafka
output, or one on a remote file system, is only named.
"""

import collections
import pathlib
import sys

from jobs.cli.failures import EXIT_INTERRUPTED, report_job_failure
from jobs.cli.metric_reports import Spread, final_metrics
from jobs.cli.parser import settings_from_args
from jobs.cli.tables import labelled
from jobs.earlier_outputs import prepare_file_outputs
from jobs.runtime.jvm import start_jvm_early
from jobs.settings import OUTPUT_NAMES, Settings
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
    earlier = prepare_file_outputs(settings.outputs, args.overwrite, resumed=settings.from_savepoint is not None)
    start_jvm_early()  # beside the second of imports and model loading that follows
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
        print(summarize(settings, earlier, submitted.get_net_runtime() / 1000))
    return 0


def summarize(settings: Settings, earlier: dict[str, frozenset[pathlib.Path]], job_seconds: float) -> str:
    """What a bounded run wrote, output by output.

    The counts come from the committed files, not from Flink's accumulators
    or metrics: those count per task attempt, so after a restart they would
    miss what the failed attempt committed or count what it did twice.

    Parameters
    ----------
    settings
        The run that finished; its local directory outputs are read back.
    earlier
        ``output name -> committed files before the run`` of each local directory output
        (``jobs.earlier_outputs.prepare_file_outputs``): not this run's, so not read.
    job_seconds
        How long the job ran, as Flink measured it.
    """
    destinations = settings.outputs.destinations
    lines = [f"riverflink run finished: the job ran {job_seconds:.1f} s"]
    for name in OUTPUT_NAMES:
        if destinations[name] is not None and name not in earlier:
            lines.append(labelled(name.replace("_", " "), f"-> {destinations[name]}"))

    def this_runs(name):  # records of a local directory output, without an earlier run's
        return read_records(destinations[name], skip=earlier[name])

    files = {name: destinations[name] for name in earlier}
    if "predictions" in files:
        count, keys = 0, set()
        for prediction in this_runs("predictions"):
            count += 1
            keys.add(prediction["key"])
        lines.append(labelled("predictions", f"{count:>8} events over {len(keys)} keys -> {files['predictions']}"))
    if "metrics" in files:
        for model, by_key in final_metrics(this_runs("metrics")).items():
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
        reasons = collections.Counter(d["reason"] for d in this_runs("dead_letters"))
        detail = ", ".join(f"{reason}: {count}" for reason, count in reasons.most_common()) or "none"
        lines.append(labelled("dead letters", f"{sum(reasons.values()):>8} ({detail}) -> {files['dead_letters']}"))
    if "events" in files:
        kinds = collections.Counter(e["event"] for e in this_runs("events"))
        detail = ", ".join(f"{kind}: {count}" for kind, count in sorted(kinds.items())) or "none"
        lines.append(labelled("events", f"{sum(kinds.values()):>8} ({detail}) -> {files['events']}"))
    if "models_out" in files:
        models = {s["key"] for s in this_runs("models_out") if not s.get("template")}
        lines.append(labelled("models", f"{len(models):>8} keys -> {files['models_out']}"))
    return "\n".join(lines)
