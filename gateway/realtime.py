"""Realtime WebSocket endpoints: authenticate, reserve a worker, proxy frames.

- `WS /v1/audio/transcriptions/stream`: the native protocol (realtime_worker.protocol),
  passed through to the worker unchanged.
- `WS /v1/speech-to-text/realtime` (and the older `/realtime-beta`): the ElevenLabs
  protocol, translated to and from the native one here at the edge.
- `GET /v1/realtime/status`: the worker pool's capacity, load and models.

Everything that can be refused is decided before a worker is reserved: the credentials
(`xi-api-key` / `Authorization: Bearer` headers, or `api_key` / single-use `token` query
parameters for browsers, which cannot set headers) and the parameters. A refusal is sent
the way clients read it best: the socket is accepted, one error message is sent, and it
is closed with 1008 (1013 when the pool is full). The reservation is released on every
exit path; while the session lives its lease is renewed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import uuid
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import urlencode

import structlog
import websockets
from fastapi import APIRouter, Depends, WebSocket
from pydantic import ValidationError
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from starlette.websockets import WebSocketDisconnect, WebSocketState
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from gateway import hybrid, ratelimit
from gateway.auth import (
    Principal,
    WebSocketAuth,
    require_scope,
    require_websocket_scope,
)
from gateway.realtime_sessions import SessionRecord
from gateway.services import Services, ServicesDep
from realtime_worker import protocol as p
from realtime_worker.asr import is_parakeet
from session_router.registry import Allocation, NoCapacity, Registry
from shared import model_registry, safejson
from shared.contracts import Word
from shared.db import RealtimeSessionStatus
from shared.formats import elevenlabs as el_format
from shared.settings import Settings

log = structlog.get_logger("gateway.realtime")
router = APIRouter(tags=["realtime"])
REALTIME_SCOPE = "realtime"
WORKER_CONNECT_TIMEOUT_S = 10.0
# JSON control messages (flush, config with a prompt, ...) are small; audio goes in binary
# frames (native) or base64 chunks (ElevenLabs), limited by realtime_max_chunk_bytes.
MAX_CONTROL_FRAME_CHARS = 64 * 1024


class Refused(Exception):
    def __init__(self, code: str, message: str, close_code: int = p.CLOSE_POLICY) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.close_code = close_code


def _registry(services: Services) -> Registry:
    return Registry(services.redis, lease_ms=int(services.settings.realtime_lease_ttl_s * 1000))


@router.get("/v1/realtime/status")
async def realtime_status(
    _: Annotated[Principal, Depends(require_scope(REALTIME_SCOPE))], services: ServicesDep
) -> dict[str, Any]:
    """Capacity, active sessions, workers and the models they serve."""
    return await _registry(services).status()


# -- authentication -------------------------------------------------------------------


RealtimeAuth = Annotated[WebSocketAuth, Depends(require_websocket_scope(REALTIME_SCOPE, token_type="realtime_scribe"))]


def _principal(auth: WebSocketAuth) -> Principal:
    """The authenticated principal, or the refusal (gateway.auth decided which)."""
    if auth.error is not None:
        if auth.error.status == 429:  # the tenant's request rate (gateway.ratelimit)
            raise Refused(auth.error.code, auth.error.message, p.CLOSE_TRY_AGAIN)
        raise Refused(p.UNAUTHORIZED if auth.error.status == 401 else p.FORBIDDEN, auth.error.message)
    assert auth.principal is not None
    return auth.principal


def _check_model(name: str, settings: Settings) -> None:
    """Refuse a model no worker could ever serve, with the reason (before reserving)."""
    if is_parakeet(name, settings):
        if name not in settings.parakeet_models:
            raise Refused(
                p.MODEL_UNAVAILABLE,
                f"model {name!r} needs Parakeet weights, which are not configured: set "
                f"DALSTON_PARAKEET_MODELS and run a realtime worker with --models {name}",
            )
        return
    try:
        model_registry.resolve(name, settings)
    except model_registry.UnknownModel as exc:
        raise Refused(p.INVALID_REQUEST, str(exc)) from None


# -- protocol edges -------------------------------------------------------------------


class NativeEdge:
    """The native protocol: frames pass through unchanged."""

    protocol = "native"
    enable_logging = True  # native clients opt out of retention with retain_audio=false

    def __init__(self, query: Mapping[str, str], settings: Settings) -> None:
        self.settings = settings
        try:
            self.params = p.SessionParams.model_validate(dict(query))
        except ValidationError as exc:
            raise Refused(p.INVALID_REQUEST, p.first_error(exc)) from None

    @staticmethod
    def error(code: str, message: str) -> dict[str, Any]:
        return p.error(code, message, fatal=True)

    def client_text(self, text: str) -> tuple[list[str | bytes], list[dict[str, Any]]]:
        # The worker validates native control messages itself; only their size is checked here.
        if len(text) > MAX_CONTROL_FRAME_CHARS:
            return [], [p.error(p.INVALID_MESSAGE, f"control messages are at most {MAX_CONTROL_FRAME_CHARS} characters; dropped")]
        return [text], []

    def client_bytes(self, data: bytes) -> tuple[list[str | bytes], list[dict[str, Any]]]:
        limit = self.settings.realtime_max_chunk_bytes
        if len(data) > limit:  # refused here so an oversize frame never reaches the worker
            return [], [p.error(p.CHUNK_TOO_LARGE, f"audio frame of {len(data)} bytes exceeds the {limit}-byte limit; dropped")]
        return [data], []

    def worker_message(self, msg: dict[str, Any]) -> list[dict[str, Any]]:
        return [msg]


# ElevenLabs realtime model ids; all of them mean the default realtime model.
ELEVENLABS_REALTIME_MODELS = ("scribe_v2_realtime", "scribe_v2_realtime_turbo", "scribe_v2_realtime_lite", "scribe_realtime_v2")
ELEVENLABS_FORMATS = {f"pcm_{rate}": ("pcm_s16le", rate) for rate in (8000, 16000, 22050, 24000, 44100, 48000)} | {
    "ulaw_8000": ("mulaw", 8000)
}
# Native error codes -> ElevenLabs `message_type`s.
ELEVENLABS_ERRORS = {
    p.INVALID_REQUEST: "invalid_request",
    p.UNAUTHORIZED: "auth_error",
    p.FORBIDDEN: "auth_error",
    p.MODEL_UNAVAILABLE: "invalid_request",
    p.NO_CAPACITY: "resource_exhausted",
    p.LAG_EXCEEDED: "queue_overflow",
    p.IDLE_TIMEOUT: "insufficient_audio_activity",
    p.WORKER_LOST: "transcriber_error",
    p.TRANSCRIBER_ERROR: "transcriber_error",
    p.INVALID_JSON: "input_error",
    p.INVALID_MESSAGE: "input_error",
    p.INVALID_AUDIO: "input_error",
    p.CHUNK_TOO_LARGE: "chunk_size_exceeded",
    ratelimit.RATE_LIMITED: "rate_limited",
    ratelimit.TOO_MANY_SESSIONS: "rate_limited",
}


def _bool(value: str | None, name: str, default: bool) -> bool:
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise Refused(p.INVALID_REQUEST, f"{name} must be true or false, not {value!r}")


def _number(value: str | None, name: str, default: float, low: float, high: float) -> float:
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise Refused(p.INVALID_REQUEST, f"{name} must be a number, not {value!r}") from None
    if not low <= number <= high:
        raise Refused(p.INVALID_REQUEST, f"{name} must be between {low:g} and {high:g}, got {value}")
    return number


class ElevenLabsEdge:
    """ElevenLabs Scribe realtime <-> native (wire facts, section 2).

    Extensions for hybrid mode: the client may send `{"message_type": "end"}` to end the
    session and receive `{"message_type": "session_ended", "session_id": ...,
    "enhancement_job_id": ...}` before the close (plain ElevenLabs clients just close)."""

    protocol = "elevenlabs"

    def __init__(self, query: Mapping[str, str], settings: Settings) -> None:
        self.settings = settings
        q = query
        model_id = (q.get("model_id") or "").strip()
        if not model_id:
            raise Refused(p.INVALID_REQUEST, "model_id is required (e.g. model_id=scribe_v2_realtime)")
        self.model_id = model_id
        model: str | None = None
        variant: str | None = None
        if model_id in ELEVENLABS_REALTIME_MODELS:
            model = settings.default_model
        elif model_id in settings.realtime_variants:
            variant = model_id
        else:
            model = model_id
            supported = [*ELEVENLABS_REALTIME_MODELS, *settings.realtime_variants, *model_registry.available(settings)]
            known = model_id in model_registry.aliases(settings) or model_id in model_registry.available(settings)
            if not known and not is_parakeet(model_id, settings):
                raise Refused(
                    p.INVALID_REQUEST, f"The model_id '{model_id}' is invalid. Supported models: {', '.join(supported)}"
                )
        # `encoding` and `sample_rate` are what older SDKs and LiveKit send instead.
        audio_format = (q.get("audio_format") or q.get("encoding") or "").strip().lower()
        if not audio_format and q.get("sample_rate"):
            audio_format = f"pcm_{q.get('sample_rate')}"
        audio_format = audio_format or "pcm_16000"
        if audio_format not in ELEVENLABS_FORMATS:
            raise Refused(
                p.INVALID_REQUEST, f"audio_format {audio_format!r} is not supported; use one of {', '.join(ELEVENLABS_FORMATS)}"
            )
        self.audio_format = audio_format
        encoding, rate = ELEVENLABS_FORMATS[audio_format]
        strategy = (q.get("commit_strategy") or "manual").strip().lower()
        if strategy not in ("manual", "vad"):
            raise Refused(p.INVALID_REQUEST, f"commit_strategy must be 'manual' or 'vad', not {strategy!r}")
        self.commit_strategy = strategy
        self.silence_s = _number(q.get("vad_silence_threshold_secs"), "vad_silence_threshold_secs", 1.5, 0.3, 3.0)
        self.vad_threshold = _number(q.get("vad_threshold"), "vad_threshold", 0.4, 0.1, 0.9)
        self.min_speech_ms = int(_number(q.get("min_speech_duration_ms"), "min_speech_duration_ms", 100, 50, 2000))
        self.min_silence_ms = int(_number(q.get("min_silence_duration_ms"), "min_silence_duration_ms", 100, 50, 2000))
        self.include_timestamps = _bool(q.get("include_timestamps"), "include_timestamps", False)
        self.enable_logging = _bool(q.get("enable_logging"), "enable_logging", True)
        language = (q.get("language_code") or "").strip()
        whisper_language = None
        if language:
            whisper_language = el_format.whisper_language(language)
            if whisper_language is None:
                raise Refused(p.INVALID_REQUEST, f"language_code {language!r} is not a supported ISO-639-1/3 code")
        self.language_code = language or None
        self.rate = rate
        self.first_chunk = True
        self.params = p.SessionParams(
            model=model,
            variant=variant,
            language=whisper_language,
            encoding=encoding,
            sample_rate=rate,
            vad=strategy == "vad",
            interim_results=True,
            word_timestamps=self.include_timestamps,
            vad_threshold=self.vad_threshold,
            min_speech_ms=self.min_speech_ms,
            min_silence_ms=self.min_silence_ms,
            endpoint_ms=int(self.silence_s * 1000),
            max_utterance_s=90.0,  # ElevenLabs auto-commits every 90 s
        )

    @staticmethod
    def error(code: str, message: str) -> dict[str, Any]:
        # `message` as well as `error`: older LiveKit plugins read `message`.
        return {"message_type": ELEVENLABS_ERRORS.get(code, "error"), "error": message, "message": message}

    def _input_error(self, message: str, kind: str = p.INVALID_MESSAGE) -> tuple[list[str | bytes], list[dict[str, Any]]]:
        return [], [self.error(kind, message)]

    def client_bytes(self, data: bytes) -> tuple[list[str | bytes], list[dict[str, Any]]]:
        return self._input_error("binary frames are not part of this protocol; send input_audio_chunk JSON messages")

    def client_text(self, text: str) -> tuple[list[str | bytes], list[dict[str, Any]]]:
        # A chunk's base64 audio is 4/3 of its bytes; anything beyond that plus room for the
        # other fields is refused before it is parsed.
        limit = self.settings.realtime_max_chunk_bytes * 4 // 3 + MAX_CONTROL_FRAME_CHARS
        if len(text) > limit:
            return self._input_error(
                f"message of {len(text)} characters exceeds the {limit}-character limit; dropped", p.CHUNK_TOO_LARGE
            )
        try:
            msg = safejson.loads(text)
        except json.JSONDecodeError as exc:
            return self._input_error(f"messages must be JSON: {exc.msg} at position {exc.pos}", p.INVALID_JSON)
        if not isinstance(msg, dict):
            return self._input_error("messages must be JSON objects")
        kind = msg.get("message_type") or ("input_audio_chunk" if "audio_base_64" in msg else None)
        if kind == "commit":
            return [json.dumps({"type": "flush"})], []
        if kind == "end":
            return [json.dumps({"type": "end"})], []
        if kind != "input_audio_chunk":
            return self._input_error(f"unknown message_type {kind!r}; expected input_audio_chunk, commit or end")
        forward: list[str | bytes] = []
        audio_b64 = msg.get("audio_base_64", "")
        if not isinstance(audio_b64, str):
            return self._input_error("audio_base_64 must be a base64 string")
        sample_rate = msg.get("sample_rate")
        if sample_rate is not None and sample_rate != self.rate:
            return self._input_error(
                f"sample_rate {sample_rate} does not match the session's audio_format {self.audio_format}; chunk dropped",
                p.INVALID_AUDIO,
            )
        # base64 is 4/3 of the audio: refuse oversized chunks before decoding them.
        limit = self.settings.realtime_max_chunk_bytes
        if len(audio_b64) > limit * 4 // 3 + 4:
            return self._input_error(f"audio chunk exceeds the {limit}-byte limit; chunk dropped", p.CHUNK_TOO_LARGE)
        try:
            audio = base64.b64decode(audio_b64, validate=True)
        except (binascii.Error, ValueError):
            return self._input_error("audio_base_64 is not valid base64; chunk dropped", p.INVALID_AUDIO)
        previous_text = msg.get("previous_text")  # the Python SDK sends null on every chunk
        if previous_text is not None:
            if not self.first_chunk:
                return self._input_error("previous_text is only allowed on the first audio chunk")
            if not isinstance(previous_text, str):
                return self._input_error("previous_text must be a string")
            forward.append(json.dumps({"type": "config", "prompt": previous_text[:1000]}))
        if audio:
            self.first_chunk = False
            forward.append(audio)
        if msg.get("commit") is True:
            forward.append(json.dumps({"type": "flush"}))
        return forward, []

    def worker_message(self, msg: dict[str, Any]) -> list[dict[str, Any]]:
        kind = msg.get("type")
        if kind == p.SESSION_BEGIN:
            config = {
                "sample_rate": self.rate,
                "audio_format": self.audio_format,
                "language_code": self.language_code,
                "model_id": self.model_id,
                "commit_strategy": self.commit_strategy,
                "vad_commit_strategy": self.commit_strategy,
                "vad_silence_threshold_secs": self.silence_s,
                "vad_threshold": self.vad_threshold,
                "min_speech_duration_ms": self.min_speech_ms,
                "min_silence_duration_ms": self.min_silence_ms,
                "include_timestamps": self.include_timestamps,
                "include_language_detection": False,
                "enable_logging": self.enable_logging,
            }
            return [{"message_type": "session_started", "session_id": msg["session_id"], "config": config}]
        if kind == p.PARTIAL:
            return [{"message_type": "partial_transcript", "text": msg["text"]}]
        if kind == p.FINAL:
            out: list[dict[str, Any]] = [{"message_type": "committed_transcript", "text": msg["text"]}]
            if self.include_timestamps:
                language = msg.get("language") or self.params.language or ""
                words = [
                    Word(text=w["word"], start=w["start"], end=w["end"], probability=w.get("probability"))
                    for w in msg.get("words", [])
                ]
                out.append(
                    {
                        "message_type": "committed_transcript_with_timestamps",
                        "text": msg["text"],
                        "language_code": el_format.ISO639_3.get(language, language) or None,
                        "words": el_format.words(words, "word"),
                    }
                )
            return out
        if kind == p.ERROR:
            return [self.error(msg.get("code", "error"), msg.get("message", ""))]
        if kind == p.SESSION_END:
            hybrid_fields = {k: msg[k] for k in ("enhancement_job_id", "enhancement_error") if k in msg}
            return [{"message_type": "session_ended", "session_id": msg["session_id"], **hybrid_fields}]
        return []  # VAD events and warnings have no ElevenLabs counterpart


# -- the proxy ------------------------------------------------------------------------


async def _refuse(ws: WebSocket, edge_error, refused: Refused) -> None:
    if ws.client_state == WebSocketState.CONNECTING:
        await ws.accept()
    try:
        await ws.send_json(edge_error(refused.code, refused.message))
        await ws.close(refused.close_code, refused.code)
    except (WebSocketDisconnect, RuntimeError):
        pass


async def _serve(ws: WebSocket, auth: WebSocketAuth, edge_class: type[NativeEdge] | type[ElevenLabsEdge]) -> None:
    services: Services = ws.app.state.services
    settings = services.settings
    edge_error = edge_class.error
    try:
        principal = _principal(auth)
        edge = edge_class(ws.query_params, settings)
        try:
            model = p.resolve_model(edge.params, settings)
        except p.UnknownRealtimeModel as exc:
            raise Refused(p.INVALID_REQUEST, str(exc)) from None
        _check_model(model, settings)
        try:
            options = hybrid.parse(
                ws.query_params, settings=settings, principal=principal, model=model,
                language=edge.params.language, logging_enabled=edge.enable_logging,
            )  # fmt: skip
        except hybrid.InvalidHybridOption as exc:
            raise Refused(p.INVALID_REQUEST, str(exc)) from None
    except Refused as refused:
        await _refuse(ws, edge_error, refused)
        return
    registry = _registry(services)
    session_uuid = uuid.uuid4()
    session_id = str(session_uuid)  # the session.begin id is the REST id
    try:
        slot = await ratelimit.acquire_session(services, principal.tenant_id, session_id)
    except ratelimit.RateLimited as exc:
        await _refuse(ws, edge_error, Refused(exc.code, exc.message, p.CLOSE_TRY_AGAIN))
        return
    except RedisError as exc:  # fail open, like the request limit; allocation reports Redis trouble
        log.warning("rate_limit_unavailable", error=f"{type(exc).__name__}: {exc}")
        slot = None
    try:
        allocation = await registry.allocate(model, session_id)
    except RedisError as exc:
        log.warning("realtime_registry_unavailable", error=f"{type(exc).__name__}: {exc}")
        await ratelimit.release_session(services.redis, slot)
        await _refuse(
            ws,
            edge_error,
            Refused(p.NO_CAPACITY, "the realtime worker registry is unavailable; retry shortly", p.CLOSE_TRY_AGAIN),
        )
        return
    if isinstance(allocation, NoCapacity):
        await ratelimit.release_session(services.redis, slot)
        if allocation.workers == 0:
            refused = Refused(
                p.MODEL_UNAVAILABLE if allocation.model != settings.default_model else p.NO_CAPACITY,
                allocation.message,
                p.CLOSE_TRY_AGAIN,
            )
        else:
            refused = Refused(p.NO_CAPACITY, allocation.message, p.CLOSE_TRY_AGAIN)
        await _refuse(ws, edge_error, refused)
        return
    log.info(
        "realtime_session_allocated",
        session_id=session_id,
        worker=allocation.worker_id,
        model=model,
        key_id=str(principal.key_id),
    )
    renewer = asyncio.create_task(_renew(registry, allocation, settings.realtime_lease_ttl_s / 3))
    slot_renewer = asyncio.create_task(ratelimit.keep_session(services.redis, slot, settings.realtime_lease_ttl_s / 3))
    record: SessionRecord | None = None
    outcome: tuple[RealtimeSessionStatus, str | None] = (RealtimeSessionStatus.failed, "the session ended before it started")
    try:
        params = edge.params.model_copy(update={"model": model, "variant": None, "record": options.retain_audio})
        try:
            record = await SessionRecord.create(
                services, principal, session_uuid, protocol=edge.protocol, model=model,
                params=params, worker_id=allocation.worker_id, options=options,
            )  # fmt: skip
        except (SQLAlchemyError, OSError) as exc:
            log.warning("realtime_session_row_failed", error=f"{type(exc).__name__}: {exc}")
            await _refuse(
                ws,
                edge_error,
                Refused(p.NO_CAPACITY, "the session history database is unavailable; retry shortly", p.CLOSE_TRY_AGAIN),
            )
            return
        query = urlencode({**params.query(), "session_id": session_id})
        try:
            upstream = await websockets.connect(
                f"{allocation.url}/session?{query}",
                open_timeout=WORKER_CONNECT_TIMEOUT_S,
                max_size=max(4 * settings.realtime_max_chunk_bytes, 1 << 20),
            )
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            log.warning("realtime_worker_unreachable", worker=allocation.worker_id, error=f"{type(exc).__name__}: {exc}")
            outcome = (RealtimeSessionStatus.failed, "the realtime worker could not be reached")
            await _refuse(
                ws, edge_error, Refused(p.WORKER_LOST, "the realtime worker could not be reached; retry", p.CLOSE_TRY_AGAIN)
            )
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
            await registry.release(allocation)
            log.info("realtime_session_released", session_id=session_id, worker=allocation.worker_id)
        except RedisError as exc:  # the lease expires on its own
            log.warning("realtime_release_failed", session_id=session_id, error=f"{type(exc).__name__}: {exc}")


async def _renew(registry: Registry, allocation: Allocation, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            if not await registry.renew(allocation):
                log.warning("realtime_lease_lost", session_id=allocation.session_id)
        except Exception as exc:  # Redis hiccup: the next renewal may succeed
            log.warning("realtime_lease_renew_failed", error=f"{type(exc).__name__}: {exc}")


async def _proxy(
    ws: WebSocket, upstream, edge: NativeEdge | ElevenLabsEdge, allocation: Allocation, record: SessionRecord, settings: Settings
) -> tuple[RealtimeSessionStatus, str | None]:
    """Relay frames both ways until the session ends; returns how it ended."""
    client_gone = False

    async def deliver(messages: list[dict[str, Any]]) -> None:
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
                msg = json.loads(raw)
                record.observe(msg)
                if msg.get("type") == p.SESSION_END:
                    # The worker stored the whole recording before saying so: enhance it
                    # now, so the client's session-end message carries the job id.
                    msg.update(await record.enhance())
                await deliver(edge.worker_message(msg))
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
            fields = await record.enhance()
            await deliver([{**edge.error(p.WORKER_LOST, message), **fields}])
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


@router.websocket("/v1/audio/transcriptions/stream")
async def native_stream(ws: WebSocket, auth: RealtimeAuth) -> None:
    await _serve(ws, auth, NativeEdge)


@router.websocket("/v1/speech-to-text/realtime")
async def elevenlabs_realtime(ws: WebSocket, auth: RealtimeAuth) -> None:
    await _serve(ws, auth, ElevenLabsEdge)


@router.websocket("/v1/speech-to-text/realtime-beta")
async def elevenlabs_realtime_beta(ws: WebSocket, auth: RealtimeAuth) -> None:
    """The path Python SDKs before v2.22.1 use."""
    await _serve(ws, auth, ElevenLabsEdge)
