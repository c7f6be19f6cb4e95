"""The realtime worker: a WebSocket server running up to `capacity` sessions at once.

Models load once at start and are shared by every session through one `DecodeScheduler`
each. The worker heartbeats its URL, capacity, load and models into the registry; the
gateway dials `ws://<worker>/session?<native params>&session_id=...` for a session it
allocated. The capacity it advertises is the configured one until it has measured what its
finals cost, then what that measurement sustains (never more than configured).
`GET /health` answers 200 once the models are loaded; `GET /metrics` is Prometheus'.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from http import HTTPStatus
from urllib.parse import parse_qsl, urlsplit

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pydantic import ValidationError
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from realtime_worker import metrics, vad
from realtime_worker.asr import load_backend
from realtime_worker.scheduler import FINAL, DecodeScheduler, FinalLoad
from realtime_worker.session import Session, run
from shared import streams
from shared.realtime import protocol as p
from shared.realtime.recording import Recorder
from shared.realtime.registry import Registry
from shared.settings import Settings
from shared.storage import ObjectStore, make_store

log = structlog.get_logger("realtime-worker")


class Worker:
    def __init__(
        self, settings: Settings, *, host: str, port: int, url: str, worker_id: str, capacity: int, models: list[str]
    ) -> None:
        self.settings = settings
        self.host = host
        self.port = port
        self.url = url
        self.worker_id = worker_id
        self.max_capacity = capacity
        self.load_meter = FinalLoad(maximum=capacity, target=settings.realtime_target_load)
        self.models = models
        self.queues: dict[str, DecodeScheduler] = {}
        self.sessions: dict[str, Session] = {}
        self.status = "starting"
        self.registry: Registry | None = None
        self.store: ObjectStore | None = None

    def load(self) -> None:
        """Load every model (raises BackendUnavailable with an actionable message)."""
        vad.load()
        for name in self.models:
            backend = load_backend(name, self.settings)
            self.queues[name] = DecodeScheduler(backend)
            log.info("model_loaded", model=name, backend=type(backend).__name__)

    async def serve(self, stop: asyncio.Event) -> None:
        for queue in self.queues.values():
            queue.start()
        redis = streams.connect(self.settings.redis_url)
        self.store = await asyncio.to_thread(make_store, self.settings)
        self.registry = Registry(redis, lease_ms=int(self.settings.realtime_lease_ttl_s * 1000))
        max_size = max(4 * self.settings.realtime_max_chunk_bytes, 1 << 20)
        async with serve(self._handle, self.host, self.port, process_request=self._http, max_size=max_size) as server:
            self.status = "ready"
            beat = asyncio.create_task(self._heartbeat_loop())
            log.info(
                "realtime_worker_listening", url=self.url, worker_id=self.worker_id, capacity=self.capacity, models=self.models
            )
            await stop.wait()
            # Drain: no new allocations, let running sessions finish for a while.
            self.status = "draining"
            await self._heartbeat()
            server.close(close_connections=False)
            log.info("draining_sessions", sessions=len(self.sessions), timeout_s=self.settings.realtime_drain_timeout_s)
            deadline = asyncio.get_running_loop().time() + self.settings.realtime_drain_timeout_s
            while self.sessions and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.1)
            beat.cancel()
            for connection in list(server.connections):
                await connection.send(
                    p.error(p.WORKER_LOST, "the realtime worker is shutting down", fatal=True).model_dump_json()
                )
                await connection.close(p.CLOSE_GOING_AWAY, "worker shutting down")
        await self.registry.deregister(self.worker_id)
        for queue in self.queues.values():
            await queue.close()
        await redis.aclose()

    @property
    def capacity(self) -> int:
        return self.load_meter.capacity() if self.settings.realtime_capacity_auto else self.max_capacity

    def partial_interval(self) -> float:
        """The partial cadence sessions get now: the configured one unless partials no longer
        fit beside the finals (DecodeScheduler.partial_interval)."""
        base = self.settings.realtime_partial_interval_s
        sessions = len(self.sessions)
        share = self.load_meter.share(sessions)
        return max((q.partial_interval(base, sessions, share) for q in self.queues.values()), default=base)

    def _measure(self) -> None:
        final_busy = sum(q.busy_s[FINAL] for q in self.queues.values())
        self.load_meter.observe(asyncio.get_running_loop().time(), final_busy, len(self.sessions))
        metrics.SESSIONS.set(len(self.sessions))
        metrics.CAPACITY.set(self.capacity)
        metrics.FINAL_LOAD.set(self.load_meter.per_session or 0.0)
        metrics.LAG.set(max((s.lag_s() for s in self.sessions.values()), default=0.0))

    async def _heartbeat(self) -> None:
        assert self.registry is not None
        self._measure()
        await self.registry.heartbeat(
            self.worker_id,
            url=self.url,
            capacity=self.capacity,
            active=len(self.sessions),
            models=self.models,
            status=self.status,
            ttl_ms=int(self.settings.realtime_heartbeat_ttl_s * 1000),
        )

    async def _heartbeat_loop(self) -> None:
        while True:
            try:
                await self._heartbeat()
            except Exception as exc:  # Redis restarting: keep serving the sessions we have
                log.warning("heartbeat_failed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(self.settings.realtime_heartbeat_interval_s)

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path == "/health":
            body = json.dumps({"status": self.status, "sessions": len(self.sessions), "capacity": self.capacity}).encode()
            return Response(HTTPStatus.OK, "OK", Headers({"Content-Type": "application/json"}), body)
        if path == "/metrics":
            return Response(HTTPStatus.OK, "OK", Headers({"Content-Type": CONTENT_TYPE_LATEST}), generate_latest(REGISTRY))
        if path != "/session":
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        return None

    async def _reject(self, ws: ServerConnection, code: str, message: str, close_code: int) -> None:
        try:
            await ws.send(p.error(code, message, fatal=True).model_dump_json())
            await ws.close(close_code, code)
        except ConnectionClosed:
            pass

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None  # set once the handshake is done, before the handler runs
        query = dict(parse_qsl(urlsplit(ws.request.path).query))
        try:
            params = p.SessionParams.model_validate(query)
            model = p.resolve_model(params, self.settings)
        except (ValidationError, p.UnknownRealtimeModel) as exc:
            await self._reject(ws, p.INVALID_REQUEST, p.first_error(exc), p.CLOSE_POLICY)
            return
        if model not in self.queues:
            await self._reject(
                ws,
                p.MODEL_UNAVAILABLE,
                f"this worker does not serve model {model!r} (it serves {', '.join(self.models)})",
                p.CLOSE_POLICY,
            )
            return
        if self.status != "ready" or len(self.sessions) >= self.capacity:
            await self._reject(
                ws, p.NO_CAPACITY, f"the realtime worker is at capacity ({self.capacity} sessions)", p.CLOSE_TRY_AGAIN
            )
            return
        session_id = params.session_id or uuid.uuid4().hex
        # Every connection runs in a task of its own: this binds the id to its lines only.
        structlog.contextvars.bind_contextvars(session_id=session_id)
        params = params.model_copy(update={"model": model})

        async def send(msg: p.ServerMessage) -> None:
            await ws.send(msg.model_dump_json())

        recorder = None
        if params.record:
            assert self.store is not None
            recorder = Recorder(self.store, session_id, chunk_seconds=self.settings.realtime_recording_chunk_s)
        session = Session(
            session_id, params, self.queues[model], self.settings, send, recorder, partial_interval=self.partial_interval
        )
        self.sessions[session_id] = session
        log.info("session_started", session_id=session_id, model=model, sessions=len(self.sessions), record=params.record)
        try:
            await run(session, ws)
        finally:
            if recorder is not None:
                await recorder.close()  # the client left or the session failed: keep what arrived
            del self.sessions[session_id]
            log.info("session_ended", session_id=session_id, **session.stats.snapshot().model_dump())
