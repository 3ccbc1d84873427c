"""``riverflink serve``: follow a job's model snapshots and answer over HTTP (``jobs.serve``)."""

import logging
import pathlib
import threading

import uvicorn

from jobs.serve.app import ServeApp
from jobs.serve.followers import DirectoryFollower, Follower, KafkaFollower
from jobs.serve.forwarding import EventForwarder
from jobs.serve.models import ServedModels
from jobs.settings import KafkaSettings, kafka_topic_of
from operators.garbage_collection import freeze_long_lived
from state.exceptions import SettingsError

__all__ = ["command", "build_app"]

logger = logging.getLogger(__name__)


def build_app(args) -> ServeApp:
    """The application parsed ``serve`` arguments describe, its follower not started yet.

    Raises
    ------
    SettingsError
        When the arguments are wrong or conflict, naming the option.
    """
    if args.live_models < 1:
        raise SettingsError(f"--live-models must be at least 1, not {args.live_models}")
    if args.max_body < 1:
        raise SettingsError(f"--max-body must be at least 1 byte, not {args.max_body}")
    destination = args.models or str(pathlib.Path(args.out) / "models-out")
    kafka = KafkaSettings(bootstrap=args.kafka_bootstrap, properties=tuple(args.kafka_property))
    topic = kafka_topic_of(destination)
    if (topic is not None or args.kafka_topic is not None) and not args.kafka_bootstrap:
        raise SettingsError(f"{'--kafka-topic' if topic is None else destination} needs --kafka-bootstrap")
    served = ServedModels(live=args.live_models)
    follower: Follower
    if topic is None:
        if pathlib.Path(destination).is_file():
            raise SettingsError(f"--models {destination}: a file, not a --models-out directory")
        follower = DirectoryFollower(served, destination)
    else:
        follower = KafkaFollower(served, kafka, topic)
    forwarder = None if args.kafka_topic is None else EventForwarder(kafka, args.kafka_topic)
    return ServeApp(served, follower, token=args.token, forwarder=forwarder, max_body=args.max_body)


def _freeze_once_loaded(follower: Follower) -> None:
    """Keep the cyclic garbage collector off the snapshots loaded at start: they live until replaced."""
    follower.loaded.wait()
    frozen = freeze_long_lived()
    logger.info("froze %d objects after loading %d keys", frozen, len(follower.served))


def command(args) -> int:
    app = build_app(args)
    app.follower.start()
    threading.Thread(target=_freeze_once_loaded, args=(app.follower,), name="riverflink-freeze", daemon=True).start()
    print(f"riverflink serve: following {app.follower.describe()}, answering on http://{args.host}:{args.port}"
          f"{' (bearer token required)' if app.token else ''}", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1") and app.token is None:
        logger.warning("serving on %s without --token: anyone who reaches this address can ask every model", args.host)
    uvicorn.run(app, host=args.host, port=args.port, loop="uvloop", http="httptools", lifespan="on",
                access_log=False, log_level="warning")
    return 0
