"""``riverflink serve``: follow a job's model snapshots and answer over HTTP (``jobs.serve``)."""

import logging
import pathlib
import threading

import uvicorn

from jobs.serve.app import ServeApp
from jobs.serve.dashboard.board import Board
from jobs.serve.dashboard.views import Dashboard
from jobs.serve.followers import DirectoryFollower, Follower, KafkaFollower
from jobs.serve.forwarding import EventForwarder
from jobs.serve.models import ServedModels
from jobs.settings import KafkaSettings, kafka_topic_of
from operators.garbage_collection import freeze_long_lived
from state.exceptions import SettingsError

__all__ = ["command", "build_app"]

logger = logging.getLogger(__name__)


def build_app(args) -> ServeApp:
    """The application parsed ``serve`` arguments describe, its followers not started yet.

    Raises
    ------
    SettingsError
        When the arguments are wrong or conflict, naming the option.
    """
    if args.live_models < 1:
        raise SettingsError(f"--live-models must be at least 1, not {args.live_models}")
    if args.max_body < 1:
        raise SettingsError(f"--max-body must be at least 1 byte, not {args.max_body}")
    sources = _sources(args)
    kafka = KafkaSettings(bootstrap=args.kafka_bootstrap, properties=tuple(args.kafka_property))
    for option, destination in [*sources.items(), ("--kafka-topic", args.kafka_topic)]:
        if destination is not None and (option == "--kafka-topic" or kafka_topic_of(destination)) \
                and not args.kafka_bootstrap:
            raise SettingsError(f"{option} {destination} needs --kafka-bootstrap")
    served = ServedModels(live=args.live_models)
    board = Board()
    accepts = {"--models": served.take_record, "--metrics": board.take_metric, "--events": board.take_event,
               "--dead-letters": board.take_dead_letter}
    followers = {option: _follower(option, destination, accepts[option], kafka)
                 for option, destination in sources.items() if destination is not None}
    forwarder = None if args.kafka_topic is None else EventForwarder(kafka, args.kafka_topic)
    dashboard = Dashboard(board, served, {option.lstrip("-"): follower.describe()
                                          for option, follower in followers.items()})
    return ServeApp(served, followers.pop("--models"), token=args.token, forwarder=forwarder,
                    max_body=args.max_body, dashboard=dashboard, followers=tuple(followers.values()))


def _sources(args) -> dict[str, str | None]:
    """``option -> destination`` of what is followed: the models, and the dashboard's metrics, events, dead letters."""
    named = {"--metrics": args.metrics, "--events": args.events, "--dead-letters": args.dead_letters}
    if args.out is None:
        return {"--models": args.models, **named}
    given = [option for option, destination in named.items() if destination is not None]
    if given:
        raise SettingsError(f"{given[0]} goes with --models; --out DIR already follows DIR/{given[0].lstrip('-')}")
    out = pathlib.Path(args.out)
    return {"--models": str(out / "models-out")} | {option: str(out / option.lstrip("-")) for option in named}


def _follower(option: str, destination: str, accept, kafka: KafkaSettings) -> Follower:
    topic = kafka_topic_of(destination)
    if topic is not None:
        return KafkaFollower(accept, kafka, topic)
    if pathlib.Path(destination).is_file():
        raise SettingsError(f"{option} {destination}: a file, not a directory the job writes to")
    return DirectoryFollower(accept, destination)


def _freeze_once_loaded(app: ServeApp) -> None:
    """Keep the cyclic garbage collector off the snapshots loaded at start: they live until replaced."""
    app.follower.loaded.wait()
    frozen = freeze_long_lived()
    logger.info("froze %d objects after loading %d keys", frozen, len(app.served))


def command(args) -> int:
    app = build_app(args)
    for follower in (app.follower, *app.followers):
        follower.start()
    threading.Thread(target=_freeze_once_loaded, args=(app,), name="riverflink-freeze", daemon=True).start()
    print(f"riverflink serve: following {app.follower.describe()}, answering on http://{args.host}:{args.port}"
          f" (dashboard at /)"
          f"{' (bearer token required)' if app.token else ''}", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1") and app.token is None:
        logger.warning("serving on %s without --token: anyone who reaches this address can ask every model", args.host)
    uvicorn.run(app, host=args.host, port=args.port, loop="uvloop", http="httptools", lifespan="on",
                access_log=False, log_level="warning")
    return 0
