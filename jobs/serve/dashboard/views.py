"""The dashboard's three answers: the page, the overview it polls, and one key's view.

The page is static (``page.html``, shipped in the package, no external
address in it); it asks ``dashboard/overview`` every second and draws what
comes back. An overview's JSON, plots included, is built once per change of
the board and then served as the same bytes to every open page.
"""

from __future__ import annotations

import importlib.resources

import orjson

from jobs.serve.dashboard.board import SERVED, Board
from jobs.serve.dashboard.charts import bar_chart, line_chart, marks_chart

__all__ = ["Dashboard"]


class Dashboard:
    """What ``GET /`` and ``GET /dashboard/...`` of ``riverflink serve`` answer.

    Parameters
    ----------
    board
        The figures followers fold in.
    served
        The served models (``jobs.serve.models.ServedModels``), for a key's version and serving model.
    sources
        What is followed, ``name -> destination`` (``models``, ``metrics``, ``events``, ``dead-letters``),
        for the page's header.
    """

    def __init__(self, board: Board, served, sources: dict[str, str]):
        self.board = board
        self.served = served
        self.sources = sources
        self._page = importlib.resources.files(__package__).joinpath("page.html").read_bytes()
        self._overview: tuple[int, bytes] | None = None

    def page(self) -> bytes:
        return self._page

    def overview(self) -> bytes:
        """The overview as JSON: figures, tables' rows and SVG plots; the same bytes until the board changes."""
        overview = self.board.overview()
        cached = self._overview
        if cached is not None and cached[0] == overview["version"]:
            return cached[1]
        body = orjson.dumps(self._render(overview), option=orjson.OPT_SERIALIZE_NUMPY)
        self._overview = (overview["version"], body)
        return body

    def key(self, key: str) -> bytes:
        """One key: its snapshot's version and serving model, each model's figure and curve, its lifecycle events."""
        figures = self.board.key(key)
        described = self.served.describe(key)
        metric = figures["metric"] or "metric"
        noun = _noun(figures["metric"])
        figures["snapshot"] = None if described is None else {
            name: described[name] for name in ("model_version", "model_ts", "serving", "kind", "model")}
        figures["found"] = bool(figures["models"]) or described is not None
        figures["plot"] = line_chart([(name, model.pop("curve")) for name, model in figures["models"].items()],
                                     f"{noun} of this key", metric, f"{metric} of {key}")
        return orjson.dumps(figures)

    def _render(self, overview: dict) -> dict:
        metric = overview["metric"] or "metric"
        noun = _noun(overview["metric"])
        models = overview["models"]
        spread = overview["spread"]
        events, dead = overview["events"], overview["dead_letters"]
        reasons = sorted(dead["counts"])
        return {
            "version": overview["version"],
            "records": overview["records"],
            "sources": self.sources,
            "keys_served": len(self.served),
            "metric": metric,
            "noun": noun,
            "bigger_is_better": overview["bigger_is_better"],
            "models": [{name: model[name] for name in ("name", "value", "n", "keys")} for model in models],
            "curve": line_chart([(model["name"], model["curve"]) for model in models],
                                noun, metric, f"{metric} over all keys"),
            "spread": {name: spread[name] for name in ("keys", "quantiles", "worst")},
            "histogram": bar_chart(spread["histogram"], f"{metric} of a key ({SERVED})", f"{metric} across keys"),
            "throughput": overview["throughput"][-1][1] if overview["throughput"] else None,
            "throughput_plot": line_chart([(f"{noun}/s", overview["throughput"])], "time (UTC)",
                                          f"{noun}/s", f"{noun} per second", clock=True,
                                          y_from_zero=True),
            "event_counts": events["counts"],
            "recent_events": events["recent"],
            "timeline": marks_chart(events["timeline"], "drifts and promotions"),
            "dead_letters": dead["counts"],
            "dead_letters_plot": line_chart(
                [(reason, [(start, counts.get(reason, 0)) for start, counts in dead["buckets"]]) for reason in reasons],
                "time read (UTC)", f"dead letters per {self.board.bucket_seconds:g} s", "dead letters by reason",
                clock=True, y_from_zero=True),
            "seconds": overview["seconds"],
        }


def _noun(metric: str | None) -> str:
    """What a metric's ``n`` counts: labelled events, or a bandit's rewards.

    >>> _noun("Accuracy"), _noun("MeanReward")
    ('labelled events', 'rewards')
    """
    return "rewards" if metric == "MeanReward" else "labelled events"
