"""What a person reads after a bounded run: events, keys, the metric, dead letters."""

import collections

from jobs.cli.metric_reports import Spread, final_metrics
from jobs.settings import OUTPUT_NAMES, Settings, kafka_topic_of
from state.destinations import read_records

__all__ = ["summarize"]


def summarize(settings: Settings) -> str:
    """Counted from the committed files of directory outputs; a Kafka output is only named."""
    lines = ["riverflink run finished"]
    for name in OUTPUT_NAMES:
        if kafka_topic_of(settings.outputs[name]) is not None:
            lines.append(f"  {name.replace('_', ' '):<14} -> {settings.outputs[name]}")
    files = {name: path for name, path in settings.outputs.items() if path is not None and kafka_topic_of(path) is None}
    if "predictions" in files:
        count, keys = 0, set()
        for prediction in read_records(files["predictions"]):
            count += 1
            keys.add(prediction["key"])
        lines.append(f"  predictions    {count:>8} events over {len(keys)} keys -> {files['predictions']}")
    if "metrics" in files:
        for model, by_key in final_metrics(read_records(files["metrics"])).items():
            overall, spread = by_key.get(None), Spread.of(by_key)
            if model is not None:
                lines.append(f"  model {model}")
            if overall is not None:
                figure = f"{overall['metric']} = {overall['value']:.4f} over {overall['n']} labelled events"
                lines.append(f"  {'metric':<14} {figure}")
            if spread is not None:
                figures = f"min {spread.low:.4f}, median {spread.median:.4f}, max {spread.high:.4f}"
                lines.append(f"  {'per key':<14} {spread.keys} keys: {figures}")
    if "dead_letters" in files:
        reasons = collections.Counter(d["reason"] for d in read_records(files["dead_letters"]))
        detail = ", ".join(f"{reason}: {count}" for reason, count in reasons.most_common()) or "none"
        lines.append(f"  dead letters   {sum(reasons.values()):>8} ({detail}) -> {files['dead_letters']}")
    if "events" in files:
        kinds = collections.Counter(e["event"] for e in read_records(files["events"]))
        detail = ", ".join(f"{kind}: {count}" for kind, count in sorted(kinds.items())) or "none"
        lines.append(f"  events         {sum(kinds.values()):>8} ({detail}) -> {files['events']}")
    if "models_out" in files:
        models = {s["key"] for s in read_records(files["models_out"])}
        lines.append(f"  models         {len(models):>8} keys -> {files['models_out']}")
    return "\n".join(lines)
