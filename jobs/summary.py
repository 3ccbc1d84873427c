"""What a person reads after a bounded run: events, keys, the metric, dead letters."""

import collections

from jobs.settings import Settings
from state.destinations import read_records

__all__ = ["summarize"]


def summarize(settings: Settings) -> str:
    lines = ["riverflink run finished"]
    if settings.predictions:
        count, keys = 0, set()
        for prediction in read_records(settings.predictions):
            count += 1
            keys.add(prediction["key"])
        lines.append(f"  predictions    {count:>8} events over {len(keys)} keys -> {settings.predictions}")
    if settings.metrics:
        final: dict = {}
        for record in read_records(settings.metrics):
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
    if settings.dead_letters:
        reasons = collections.Counter(d["reason"] for d in read_records(settings.dead_letters))
        detail = ", ".join(f"{reason}: {count}" for reason, count in reasons.most_common()) or "none"
        lines.append(f"  dead letters   {sum(reasons.values()):>8} ({detail}) -> {settings.dead_letters}")
    if settings.models_out:
        models = {s["key"] for s in read_records(settings.models_out)}
        lines.append(f"  models         {len(models):>8} keys -> {settings.models_out}")
    return "\n".join(lines)
