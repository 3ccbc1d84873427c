"""The HTTP face of ``riverflink serve``: an ASGI application, run by uvicorn.

It is a bare ASGI callable rather than a web framework's: five routes need no
router, and a prediction costs tens of microseconds, so what a framework adds
per request would be most of the time a request takes. uvicorn parses HTTP;
orjson reads and writes JSON.

Routes (SPEC §6): ``POST /predict``, ``GET /models/{key}``, ``GET /health``,
``GET /metrics``, ``POST /events`` when the server forwards events, and the
dashboard: ``GET /`` and what its page asks, ``GET /dashboard/overview`` and
``GET /dashboard/key?key=K``. With a token, every route but ``/health`` needs
``Authorization: Bearer TOKEN``; a browser, which cannot send that header,
opens ``/?token=TOKEN`` once and is given the token as a cookie instead.
"""

from __future__ import annotations

import asyncio
import hmac
import http.cookies
import logging
import time
import urllib.parse

import orjson

from jobs.serve.dashboard.board import Board
from jobs.serve.dashboard.views import Dashboard
from jobs.serve.followers import Follower
from jobs.serve.forwarding import EventForwarder
from jobs.serve.models import NeedsArms, ServedModels
from jobs.serve.prometheus import ServeMetrics
from operators.dead_letters import DeadLetter, Reason
from operators.events import decode_arms, decode_query
from state.json_lines import parse_json

__all__ = ["ServeApp", "MAX_BODY_BYTES"]

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20  # a request body beyond this is refused with 413
_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
TOKEN_COOKIE = "riverflink_token"
_HTML = b"text/html; charset=utf-8"


class _Refused(Exception):
    """A request answered with an error: ``{"error": reason, "detail": detail}``."""

    def __init__(self, status: int, reason: str, detail: str):
        super().__init__(detail)
        self.status, self.reason, self.detail = status, reason, detail


class ServeApp:
    """The ASGI application over one set of served models.

    Parameters
    ----------
    served
        The models, fed by ``follower``.
    follower
        What follows the job's models destination; ``/health`` says whether it has loaded.
    token
        A bearer token every route but ``/health`` needs; None: no token.
    forwarder
        Where ``POST /events`` sends event lines; None: the route is not offered.
    max_body
        The largest request body taken, in bytes.
    dashboard
        What ``GET /`` shows; None: a dashboard of the served models only (no metrics, events or dead letters).
    followers
        The dashboard's followers (metrics, events, dead letters), stopped with the server.
    """

    def __init__(self, served: ServedModels, follower: Follower, token: str | None = None,
                 forwarder: EventForwarder | None = None, max_body: int = MAX_BODY_BYTES,
                 dashboard: Dashboard | None = None, followers: tuple[Follower, ...] = ()):
        self.served = served
        self.follower = follower
        self._token = token
        self.token = None if token is None else f"Bearer {token}".encode()
        self.forwarder = forwarder
        self.max_body = max_body
        self.dashboard = dashboard or Dashboard(Board(), served, {"models": follower.describe()})
        self.followers = followers
        self.metrics = ServeMetrics(served, follower, self.dashboard.board)
        self.routes = {
            ("POST", "/predict"): self._predict,
            ("GET", "/health"): self._health,
            ("GET", "/metrics"): self._metrics,
            ("POST", "/events"): self._events,
            ("GET", "/"): self._page,
            ("GET", "/dashboard/overview"): self._overview,
            ("GET", "/dashboard/key"): self._key,
        }
        self.paths = {path for _, path in self.routes}

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise RuntimeError(f"riverflink serve speaks HTTP only, not {scope['type']}")
        started = time.perf_counter()
        method, path = scope["method"], scope["path"]
        route = "other"
        try:
            route, handler = self._route(method, path)
            if route != "/health" and self.token is not None and not self._authorized(scope):
                raise _Refused(401, "unauthorized", "this server needs 'Authorization: Bearer TOKEN'")
            status, body, content_type, *extra = await handler(scope, receive, path)
        except _Refused as refused:
            status, content_type, extra = refused.status, b"application/json", []
            body = orjson.dumps({"error": refused.reason, "detail": refused.detail})
        headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *extra]
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        self.metrics.observe(route, status, time.perf_counter() - started)

    def _route(self, method: str, path: str):
        handler = self.routes.get((method, path))
        if handler is not None:
            return path, handler
        if method == "GET" and path.startswith("/models/") and len(path) > len("/models/"):
            return "/models", self._model
        if path in self.paths or path.startswith("/models/"):
            raise _Refused(405, "method_not_allowed", f"{method} is not served at {path}")
        raise _Refused(404, "not_found", f"no route {path}")

    def _authorized(self, scope) -> bool:
        """The bearer token in the header; else the dashboard's cookie, or ``?token=`` on the page's address."""
        offered = []
        for name, value in scope["headers"]:
            if name == b"authorization":
                return hmac.compare_digest(value, self.token)
            if name == b"cookie":
                cookie = http.cookies.SimpleCookie()
                cookie.load(value.decode("latin-1"))
                if TOKEN_COOKIE in cookie:
                    offered.append(cookie[TOKEN_COOKIE].value)
        if scope["path"] == "/":
            offered.extend(_query(scope).get("token", []))
        return any(hmac.compare_digest(f"Bearer {token}".encode(), self.token) for token in offered)

    async def _body(self, scope, receive) -> bytes:
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body:
                raise _Refused(413, "too_large", f"a request body is at most {self.max_body} bytes")
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Refused(400, "disconnected", "the client went away before its body arrived")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise _Refused(413, "too_large", f"a request body is at most {self.max_body} bytes")
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    async def _predict(self, scope, receive, path):
        body = await self._body(scope, receive)
        try:
            request = parse_json(body.decode("utf-8"))
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError too
            raise _Refused(400, Reason.NOT_JSON, str(exc)) from None
        if isinstance(request, list):
            answers = [self._answer(item, f"item {number}: ") for number, item in enumerate(request)]
            return 200, orjson.dumps(answers, option=_JSON_OPTIONS), b"application/json"
        return 200, orjson.dumps(self._answer(request, ""), option=_JSON_OPTIONS), b"application/json"

    def _answer(self, request, where: str) -> dict:
        query = decode_query(request)
        if isinstance(query, DeadLetter):
            raise _Refused(400, query.reason, where + query.detail)
        key, x = query
        arms = None
        if "arms" in request:  # a bandit policy's choices
            arms = decode_arms(request["arms"])
            if isinstance(arms, DeadLetter):
                raise _Refused(400, arms.reason, where + arms.detail)
        try:
            answer = self.served.predict(key, x, arms)
        except LookupError as exc:
            raise _Refused(503, "no_template", where + str(exc)) from None
        except NeedsArms as exc:
            raise _Refused(400, Reason.MISSING_ARMS, where + str(exc)) from None
        except Exception as exc:  # the model's failure is the request's, never the server's
            logger.debug("the model of %r raised on a request", key, exc_info=True)
            raise _Refused(400, Reason.MODEL_ERROR, f"{where}{type(exc).__name__}: {exc}") from None
        self.metrics.predictions.inc()
        return answer.record()

    async def _model(self, scope, receive, path):
        key = urllib.parse.unquote(path[len("/models/"):])
        described = self.served.describe(key)
        if described is None:
            raise _Refused(404, "unknown_key", f"no snapshot of the key {key!r}")
        return 200, orjson.dumps(described), b"application/json"

    async def _health(self, scope, receive, path):
        follower = self.follower
        if follower.error is not None:
            raise _Refused(503, "not_following", f"following {follower.describe()} failed: {follower.error}")
        if not follower.loaded.is_set():
            raise _Refused(503, "loading", f"still reading {follower.describe()}")
        record = {"status": "ok", "keys": len(self.served), "template": self.served.template is not None}
        return 200, orjson.dumps(record), b"application/json"

    async def _metrics(self, scope, receive, path):
        return 200, self.metrics.exposition(), self.metrics.content_type

    async def _events(self, scope, receive, path):
        if self.forwarder is None:
            raise _Refused(404, "not_found", "this server forwards no events: start it with --kafka-topic")
        body = await self._body(scope, receive)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Refused(400, Reason.NOT_JSON, f"the body is not UTF-8: {exc}") from None
        lines = [line for line in text.splitlines() if line.strip()]
        rejected = self.forwarder.check(lines, self.served.is_bandit)
        if rejected is not None:
            raise _Refused(400, rejected.reason, rejected.detail)
        forwarded = await asyncio.to_thread(self.forwarder.forward, lines)  # predictions go on meanwhile
        return 202, orjson.dumps({"forwarded": forwarded}), b"application/json"

    async def _page(self, scope, receive, path):
        if self.token is not None and "token" in _query(scope):  # keep the token in a cookie, not in the address bar
            cookie = f"{TOKEN_COOKIE}={self._token}; Path=/; HttpOnly; SameSite=Strict".encode()
            return 303, b"", _HTML, (b"location", b"./"), (b"set-cookie", cookie)
        return 200, self.dashboard.page(), _HTML, (b"cache-control", b"no-cache")

    async def _overview(self, scope, receive, path):
        # Computing it takes 40 ms with 100,000 keys, 0.5 s with a million: predictions go on meanwhile.
        overview = await asyncio.to_thread(self.dashboard.overview)
        return 200, overview, b"application/json", (b"cache-control", b"no-store")

    async def _key(self, scope, receive, path):
        keys = _query(scope).get("key")
        if not keys:
            raise _Refused(400, "no_key", "ask /dashboard/key?key=KEY")
        return 200, self.dashboard.key(keys[0]), b"application/json", (b"cache-control", b"no-store")

    async def _lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for follower in (self.follower, *self.followers):
                    follower.stop()
                if self.forwarder is not None:
                    self.forwarder.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _query(scope) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
