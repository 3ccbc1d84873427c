"""What a person reads after a bounded run: events, keys, the metric, dead letters."""

import collections

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
        final: dict = {}
        for record in read_records(files["metrics"]):
            known = final.get(record["key"])
            if known is None or record["n"] >= known["n"]:
                final[record["key"]] = record
        overall = final.pop(None, None)
        if overall is not None:
            lines.append(f"  metric         {overall['metric']} = {overall['value']:.4f} over {overall['n']} labelled events")
        if final:
            values = sorted(record["value"] for record in final.values())
            median = values[len(values) // 2]
            lines.append(
                f"  per key        {len(final)} keys: min {values[0]:.4f}, median {median:.4f}, max {values[-1]:.4f}"
            )
    if "dead_letters" in files:
        reasons = collections.Counter(d["reason"] for d in read_records(files["dead_letters"]))
        detail = ", ".join(f"{reason}: {count}" for reason, count in reasons.most_common()) or "none"
        lines.append(f"  dead letters   {sum(reasons.values()):>8} ({detail}) -> {files['dead_letters']}")
    if "models_out" in files:
        models = {s["key"] for s in read_records(files["models_out"])}
        lines.append(f"  models         {len(models):>8} keys -> {files['models_out']}")
    return "\n".join(lines)
