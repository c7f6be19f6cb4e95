"""A realtime session's life at the gateway, whatever its wire protocol (`Edge`): check,
reserve a worker, keep the lease and the session row, relay frames, close.

Everything that can be refused is decided before a worker is reserved: the credentials
(`xi-api-key` / `Authorization: Bearer` headers, or `api_key` / single-use `token` query
parameters for browsers, which cannot set headers), the parameters, the model and the
hybrid-mode options. A refusal is sent the way clients read it best: the socket is
accepted, one error message is sent, and it is closed with 1008 (1013 when the pool or the
tenant's session limit is full). The reservation (shared.realtime.registry) is released on
every exit path; while the session lives its lease is renewed.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Annotated
from urllib.parse import urlencode

import structlog
from fastapi import Depends, WebSocket
from pydantic import ValidationError
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from starlette.websockets import WebSocketDisconnect, WebSocketState
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from gateway import hybrid, ratelimit
from gateway.auth import Principal, WebSocketAuth, require_websocket_scope
from gateway.realtime.edge import ClientMessage, Edge, Refused
from gateway.realtime_sessions import SessionRecord
from gateway.services import Services
from shared import model_registry
from shared.catalogue import realtime_backend
from shared.db import RealtimeSessionStatus
from shared.realtime import protocol as p
from shared.realtime.registry import Allocation, NoCapacity, Registry
from shared.settings import Settings

log = structlog.get_logger("gateway.realtime")
REALTIME_SCOPE = "realtime"
WORKER_CONNECT_TIMEOUT_S = 10.0

# The WebSocket credentials every edge's route takes.
RealtimeAuth = Annotated[WebSocketAuth, Depends(require_websocket_scope(REALTIME_SCOPE, token_type="realtime_scribe"))]

Outcome = tuple[RealtimeSessionStatus, str | None]  # how the session ended, for its row


def registry(services: Services) -> Registry:
    return Registry(services.redis, lease_ms=int(services.settings.realtime_lease_ttl_s * 1000))


# -- before the session ---------------------------------------------------------------


def _principal(auth: WebSocketAuth) -> Principal:
    """The authenticated principal, or the refusal (gateway.auth decided which)."""
    if auth.error is not None:
        if auth.error.status == 429:  # the tenant's request rate (gateway.ratelimit)
            raise Refused(auth.error.code, auth.error.message, p.CLOSE_TRY_AGAIN)
        if auth.error.status == 503:  # PostgreSQL or Redis is down (gateway.errors.outage_error)
            raise Refused(p.SERVICE_UNAVAILABLE, auth.error.message, p.CLOSE_TRY_AGAIN)
        raise Refused(p.UNAUTHORIZED if auth.error.status == 401 else p.FORBIDDEN, auth.error.message)
    assert auth.principal is not None
    return auth.principal


def _model(params: p.SessionParams, settings: Settings) -> str:
    """The model the session asks for; refused when no worker could ever serve it."""
    try:
        name = p.resolve_model(params, settings)
    except p.UnknownRealtimeModel as exc:
        raise Refused(p.INVALID_REQUEST, str(exc)) from None
    if realtime_backend(name, settings).id == "parakeet":
        if name not in settings.parakeet_models:
            raise Refused(
                p.MODEL_UNAVAILABLE,
                f"model {name!r} needs Parakeet weights, which are not configured: set "
                f"DALSTON_PARAKEET_MODELS and run a realtime worker with --models {name}",
            )
        return name
    try:
        model_registry.resolve(name, settings)
    except model_registry.UnknownModel as exc:
        raise Refused(p.INVALID_REQUEST, str(exc)) from None
    return name


async def _refuse(ws: WebSocket, edge: type[Edge], refused: Refused) -> None:
    if ws.client_state == WebSocketState.CONNECTING:
        await ws.accept()
    try:
        await ws.send_json(edge.error(refused.code, refused.message))
        await ws.close(refused.close_code, refused.code)
    except (WebSocketDisconnect, RuntimeError):
        pass


def _no_capacity(allocation: NoCapacity, settings: Settings) -> Refused:
    if allocation.workers == 0 and allocation.model != settings.default_model:
        return Refused(p.MODEL_UNAVAILABLE, allocation.message, p.CLOSE_TRY_AGAIN)
    return Refused(p.NO_CAPACITY, allocation.message, p.CLOSE_TRY_AGAIN)


# -- the session ----------------------------------------------------------------------


async def serve(ws: WebSocket, auth: WebSocketAuth, edge_class: type[Edge]) -> None:
    """Run one realtime session on `ws` in the protocol `edge_class` speaks."""
    services: Services = ws.app.state.services
    settings = services.settings
    try:
        principal = _principal(auth)
        edge = edge_class(ws.query_params, settings)
        model = _model(edge.params, settings)
        try:
            options = hybrid.parse(
                ws.query_params, settings=settings, principal=principal, model=model,
                language=edge.params.language, logging_enabled=edge.enable_logging,
            )  # fmt: skip
        except hybrid.InvalidHybridOption as exc:
            raise Refused(p.INVALID_REQUEST, str(exc)) from None
    except Refused as refused:
        await _refuse(ws, edge_class, refused)
        return
    pool = registry(services)
    session_uuid = uuid.uuid4()
    session_id = str(session_uuid)  # the session.begin id is the REST id
    try:
        slot = await ratelimit.acquire_session(services, principal.tenant_id, session_id)
    except ratelimit.RateLimited as exc:
        await _refuse(ws, edge_class, Refused(exc.code, exc.message, p.CLOSE_TRY_AGAIN))
        return
    except RedisError as exc:  # fail open, like the request limit; allocation reports Redis trouble
        log.warning("rate_limit_unavailable", error=f"{type(exc).__name__}: {exc}")
        slot = None
    try:
        allocation = await pool.allocate(model, session_id)
    except RedisError as exc:
        log.warning("realtime_registry_unavailable", error=f"{type(exc).__name__}: {exc}")
        await ratelimit.release_session(services.redis, slot)
        message = "Redis (the realtime worker registry) is unavailable right now; retry in a few seconds"
        await _refuse(ws, edge_class, Refused(p.SERVICE_UNAVAILABLE, message, p.CLOSE_TRY_AGAIN))
        return
    if isinstance(allocation, NoCapacity):
        await ratelimit.release_session(services.redis, slot)
        await _refuse(ws, edge_class, _no_capacity(allocation, settings))
        return
    log.info(
        "realtime_session_allocated",
        session_id=session_id,
        worker=allocation.worker_id,
        model=model,
        key_id=str(principal.key_id),
    )
    renewer = asyncio.create_task(_renew(pool, allocation, settings.realtime_lease_ttl_s / 3))
    slot_renewer = asyncio.create_task(ratelimit.keep_session(services.redis, slot, settings.realtime_lease_ttl_s / 3))
    record: SessionRecord | None = None
    outcome: Outcome = (RealtimeSessionStatus.failed, "the session ended before it started")
    try:
        params = edge.params.model_copy(update={"model": model, "variant": None, "record": options.retain_audio})
        try:
            record = await SessionRecord.create(
                services, principal, session_uuid, protocol=edge.protocol, model=model,
                params=params, worker_id=allocation.worker_id, options=options,
            )  # fmt: skip
        except (SQLAlchemyError, OSError) as exc:
            log.warning("realtime_session_row_failed", error=f"{type(exc).__name__}: {exc}")
            message = "the database (session history) is unavailable right now; retry in a few seconds"
            await _refuse(ws, edge_class, Refused(p.SERVICE_UNAVAILABLE, message, p.CLOSE_TRY_AGAIN))
            return
        query = {**params.query(), "session_id": session_id}
        try:
            upstream = await connect(
                f"{allocation.url}/session?{urlencode(query)}",
                open_timeout=WORKER_CONNECT_TIMEOUT_S,
                max_size=max(4 * settings.realtime_max_chunk_bytes, 1 << 20),
            )
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            log.warning("realtime_worker_unreachable", worker=allocation.worker_id, error=f"{type(exc).__name__}: {exc}")
            outcome = (RealtimeSessionStatus.failed, "the realtime worker could not be reached")
            message = "the realtime worker could not be reached; retry"
            await _refuse(ws, edge_class, Refused(p.WORKER_LOST, message, p.CLOSE_TRY_AGAIN))
            return
        async with upstream:
            await ws.accept()
            outcome = await _proxy(ws, upstream, edge, allocation, record, settings)
    finally:
        renewer.cancel()
        slot_renewer.cancel()
        await ratelimit.release_session(services.redis, slot)
        if record is not None:
            try:
                await record.finish(*outcome)
            except Exception:  # the session is over either way; the row stays `active`
                log.warning("realtime_session_finish_failed", session_id=session_id, exc_info=True)
        try:
            await pool.release(allocation)
            log.info("realtime_session_released", session_id=session_id, worker=allocation.worker_id)
        except RedisError as exc:  # the lease expires on its own
            log.warning("realtime_release_failed", session_id=session_id, error=f"{type(exc).__name__}: {exc}")


async def _renew(pool: Registry, allocation: Allocation, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            if not await pool.renew(allocation):
                log.warning("realtime_lease_lost", session_id=allocation.session_id)
        except Exception as exc:  # Redis hiccup: the next renewal may succeed
            log.warning("realtime_lease_renew_failed", error=f"{type(exc).__name__}: {exc}")


async def _proxy(
    ws: WebSocket, upstream: ClientConnection, edge: Edge, allocation: Allocation, record: SessionRecord, settings: Settings
) -> Outcome:
    """Relay frames both ways until the session ends; returns how it ended."""
    client_gone = False

    async def deliver(messages: list[ClientMessage]) -> None:
        nonlocal client_gone
        if client_gone:
            return
        try:
            for msg in messages:
                await ws.send_json(msg)
        except Exception:  # the client went away mid-send; the worker's side carries on
            client_gone = True

    async def client_to_worker() -> None:
        while True:
            event = await ws.receive()
            if event["type"] == "websocket.disconnect":
                return
            if event.get("bytes") is not None:
                forward, replies = edge.client_bytes(event["bytes"])
            else:
                forward, replies = edge.client_text(event.get("text") or "")
            for frame in forward:
                await upstream.send(frame)
            await deliver(replies)

    async def worker_to_client() -> tuple[int, str] | None:
        """The worker's close code and reason; None when it died without closing."""
        try:
            async for raw in upstream:
                try:
                    msg = p.parse_server_message(raw)
                except ValidationError as exc:  # a worker of another version: skip what we cannot read
                    log.warning("realtime_worker_message_invalid", session_id=allocation.session_id, error=p.first_error(exc))
                    continue
                record.observe(msg)
                if isinstance(msg, p.SessionEnd):
                    # The worker stored the whole recording before saying so: enhance it
                    # now, so the client's session-end message carries the job id.
                    msg = msg.model_copy(update=await record.enhance())
                await deliver(edge.worker_message(msg))
                await deliver(await edge.follow_up(msg))
        except ConnectionClosed:
            pass
        if upstream.close_code is not None and upstream.protocol.close_rcvd is not None:
            return upstream.close_code, upstream.close_reason or ""
        return None

    up = asyncio.create_task(client_to_worker())
    down = asyncio.create_task(worker_to_client())
    try:
        done, _ = await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        if up in done:
            exc = up.exception()
            if exc is not None and not isinstance(exc, (WebSocketDisconnect, ConnectionClosed)):
                log.warning("realtime_proxy_error", error=f"{type(exc).__name__}: {exc}")
            if not isinstance(exc, ConnectionClosed):
                # The client left: let the worker finish the audio it has, so the last
                # finals and the recording are stored (and enhanced) as on a clean end.
                client_gone = True
                try:
                    await upstream.send(json.dumps({"type": "end"}))
                except ConnectionClosed:
                    pass
            # Otherwise the worker's side closed while a frame was on its way: `down` says why.
            await asyncio.wait({down}, timeout=settings.realtime_end_timeout_s)
        if not down.done():
            await upstream.close()
            return (
                RealtimeSessionStatus.failed,
                f"the realtime worker did not finish the session within {settings.realtime_end_timeout_s:g} s",
            )
        closed = down.result()
        if closed is None:
            # No close frame: the worker died under the session. Its recording holds what
            # it stored up to then; hybrid mode enhances that partial recording.
            log.warning("realtime_worker_lost", session_id=allocation.session_id, worker=allocation.worker_id)
            message = "the realtime worker serving this session stopped unexpectedly; reconnect to start a new session"
            lost = p.error(p.WORKER_LOST, message, fatal=True).model_copy(update=await record.enhance())
            await deliver(edge.worker_message(lost))
            await _close(ws, p.CLOSE_INTERNAL, p.WORKER_LOST, client_gone)
            return RealtimeSessionStatus.interrupted, f"{p.WORKER_LOST}: {message}"
        code, reason = closed
        await _close(ws, code, reason, client_gone)
        if code == p.CLOSE_GOING_AWAY:  # the worker shut down under the session
            await record.enhance()
            return RealtimeSessionStatus.interrupted, record.error
        if record.end is not None or (code == p.CLOSE_NORMAL and record.error is None):
            return RealtimeSessionStatus.completed, None
        return RealtimeSessionStatus.failed, record.error or f"the worker closed the session ({code} {reason})"
    finally:
        up.cancel()
        down.cancel()
        await asyncio.gather(up, down, return_exceptions=True)


async def _close(ws: WebSocket, code: int, reason: str, client_gone: bool) -> None:
    if client_gone or ws.client_state != WebSocketState.CONNECTED:
        return
    try:
        await ws.close(code, reason)
    except (WebSocketDisconnect, RuntimeError):
        pass
