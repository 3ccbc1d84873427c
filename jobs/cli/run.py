"""``riverflink run``: run the learning job, then print what a person reads after a bounded run.

The summary counts events, keys, the metric and dead letters from the
committed files of directory outputs, only those this run added, read while
the job runs (``jobs.cli.run_tally``); a Kafka output, or one on a remote
file system, is only named.
"""

import contextlib
import gc
import sys

from jobs.cli.failures import EXIT_INTERRUPTED, report_job_failure
from jobs.cli.metric_reports import Spread
from jobs.cli.parser import settings_from_args
from jobs.cli.run_tally import RunTally
from jobs.cli.tables import labelled
from jobs.earlier_outputs import prepare_file_outputs
from jobs.runtime.jvm import start_jvm_early
from jobs.runtime.prometheus_reporter import client_jars
from jobs.settings import OUTPUT_NAMES, Settings
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
    start_jvm_early("cluster-client" if settings.jobmanager else "mini-cluster",  # beside the imports that follow
                    extra_jars=client_jars(settings))
    # Importing river, pandas, scipy and PyFlink allocates a few hundred thousand objects and frees
    # almost none: the cyclic collector would walk them again and again for 0.1 s. Once imported,
    # they are frozen out of every later collection.
    gc.disable()
    try:
        from jobs.learn_job import run_job
    finally:
        gc.freeze()
        gc.enable()

    if not settings.bounded and not settings.detached and not args.quiet:
        source = f"Kafka ({', '.join(settings.kafka.topics)})" if settings.kafka.topics else "watched inputs"
        print(f"riverflink: learning from {source} until stopped (Ctrl-C)", file=sys.stderr)
    summarized = settings.bounded and not settings.detached and not args.quiet
    tally = RunTally({name: settings.outputs.destinations[name] for name in earlier}, earlier)
    try:
        with tally.following() if summarized else contextlib.nullcontext():
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
    elif summarized:
        print(summarize(settings, tally, submitted.get_net_runtime() / 1000))
    return 0


def summarize(settings: Settings, tally: RunTally, job_seconds: float) -> str:
    """What a bounded run wrote, output by output.

    Parameters
    ----------
    settings
        The run that finished.
    tally
        The counts over the committed files this run added to its local directory outputs.
    job_seconds
        How long the job ran, as Flink measured it.
    """
    destinations = settings.outputs.destinations
    lines = [f"riverflink run finished: the job ran {job_seconds:.1f} s"]
    for name in OUTPUT_NAMES:
        if destinations[name] is not None and name not in tally.destinations:
            lines.append(labelled(name.replace("_", " "), f"-> {destinations[name]}"))

    files = tally.destinations
    if "predictions" in files:
        lines.append(labelled("predictions", f"{tally.predictions:>8} events over {len(tally.prediction_keys)} keys "
                                             f"-> {files['predictions']}"))
    if "metrics" in files:
        for model, by_key in tally.final_metrics.items():
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
        reasons = tally.dead_letter_reasons
        detail = ", ".join(f"{reason}: {count}" for reason, count in reasons.most_common()) or "none"
        lines.append(labelled("dead letters", f"{sum(reasons.values()):>8} ({detail}) -> {files['dead_letters']}"))
    if "events" in files:
        kinds = tally.event_kinds
        detail = ", ".join(f"{kind}: {count}" for kind, count in sorted(kinds.items())) or "none"
        lines.append(labelled("events", f"{sum(kinds.values()):>8} ({detail}) -> {files['events']}"))
    if "models_out" in files:
        size = tally.model_bytes_per_key
        per_key = "" if size is None else f", {_bytes(size)} a key ({_bytes(size * 1e6)} per million keys)"
        lines.append(labelled("models", f"{len(tally.model_sizes):>8} keys{per_key} -> {files['models_out']}"))
    return "\n".join(lines)


def _bytes(n: float) -> str:
    """A size for people.

    >>> _bytes(812), _bytes(1536), _bytes(1.5e9)
    ('812 B', '1.5 KB', '1.4 GB')
    """
    units, power = ("B", "KB", "MB", "GB"), 0
    while n >= 1024 and power < len(units) - 1:
        n, power = n / 1024, power + 1
    return f"{n:.0f} B" if power == 0 else f"{n:.1f} {units[power]}"
