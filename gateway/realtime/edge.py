"""What a realtime wire protocol implements: the `Edge` protocol, and the refusal it raises.

The gateway proxies every realtime session to a worker that speaks only the native
protocol (shared.realtime.protocol). An edge is one client-facing protocol translated to
and from it; the proxy (gateway.realtime.proxy) does everything else, the same for all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol

from shared.realtime import protocol as p
from shared.settings import Settings

# JSON control messages (flush, config with a prompt, ...) are small; audio goes in binary
# frames (native) or base64 chunks (ElevenLabs), limited by realtime_max_chunk_bytes.
MAX_CONTROL_FRAME_CHARS = 64 * 1024

# One JSON message to the client, in the edge's own shape.
ClientMessage = dict[str, Any]


class Refused(Exception):
    """The session is refused before it starts: the client gets `Edge.error(code, message)`,
    then the close. `code` is a native error code (shared.realtime.protocol) or a rate-limit
    code (gateway.ratelimit); each edge words it in its own protocol."""

    def __init__(self, code: str, message: str, close_code: int = p.CLOSE_POLICY) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.close_code = close_code


class Translated(NamedTuple):
    """What one client frame becomes."""

    to_worker: list[str | bytes]  # native frames: JSON control text, or audio bytes
    to_client: list[ClientMessage]  # sent back at once (e.g. the error for a dropped frame)


class Edge(Protocol):
    """A client-facing realtime protocol, translated to and from the native one.

    Adding a protocol (say the OpenAI Realtime API, `WS /v1/realtime?intent=transcription`)
    is one module: a class with the members below, and an `APIRouter` whose WebSocket route
    hands the socket to the proxy, e.g.

        router = APIRouter(tags=["realtime"])

        @router.websocket("/v1/realtime")
        async def openai_realtime(ws: WebSocket, auth: RealtimeAuth) -> None:
            await serve(ws, auth, OpenAIEdge)  # from gateway.realtime.proxy

    plus `app.include_router(router)` in gateway/app.py. The proxy then authenticates (the
    `realtime` scope; headers, or `api_key` / single-use `token` query parameters), checks
    the model, reads the hybrid-mode options (`retain_audio`, `enhance_on_end`, ...) from
    the same query, applies the tenant's session limit, reserves a worker, keeps the session
    row and the lease, relays frames both ways through the methods below, and closes the
    client's socket with the worker's close code. An edge never sees Redis, the database or
    the worker's socket, and holds no state but its own translation state.

    Lifecycle: the class is constructed once per connection, before anything is reserved;
    then `client_text` / `client_bytes` run for each client frame and `worker_message` for
    each worker message, in order, until the session ends. Refusals before the session
    (bad credentials, parameters, model; no capacity) use the static `error`, so it must
    not need an instance.
    """

    # Stored in the session row (`realtime_sessions.protocol`): "native", "elevenlabs", ...
    protocol: str
    # The native parameters of the session, from the connect-time query. The proxy resolves
    # `model` / `variant` to a model name and sets `record`; everything else is the edge's.
    params: p.SessionParams
    # False when the client opted out of retention in the protocol's own words (ElevenLabs
    # `enable_logging=false`); the native `retain_audio=false` is read by the proxy.
    enable_logging: bool

    def __init__(self, query: Mapping[str, str], settings: Settings) -> None:
        """Read the connect-time query parameters (credentials and hybrid-mode options are
        the proxy's: ignore them). Raise `Refused(p.INVALID_REQUEST, message)` for any bad
        parameter, with a message that tells the client what to send instead."""
        ...

    @staticmethod
    def error(code: str, message: str) -> ClientMessage:
        """The client message for error `code` (a native error code, see
        shared.realtime.protocol, or a gateway.ratelimit code): refusals, dropped frames,
        and the worker's own errors all come through here."""
        ...

    def client_text(self, text: str) -> Translated:
        """A text frame from the client: the native frames to forward (`{"type": "flush"}`,
        `{"type": "end"}`, `{"type": "config", ...}` as JSON text, audio as bytes in the
        session's `params.encoding`) and any replies. A malformed frame is dropped with an
        error reply; the session goes on. Check sizes before parsing (MAX_CONTROL_FRAME_CHARS,
        settings.realtime_max_chunk_bytes)."""
        ...

    def client_bytes(self, data: bytes) -> Translated:
        """A binary frame from the client; as `client_text`."""
        ...

    def worker_message(self, msg: p.ServerMessage) -> list[ClientMessage]:
        """What the client is sent for one worker message (none, one or several). `msg` is
        typed: match on its class (p.SessionBegin, p.TranscriptPartial, p.TranscriptFinal,
        p.SessionEnd, p.ErrorMessage, ...). The proxy adds the hybrid-mode outcome
        (`enhancement_job_id` / `enhancement_error`) to `p.SessionEnd`, and to the
        `p.ErrorMessage` it makes up when the worker is lost: pass those on."""
        ...

    async def follow_up(self, msg: p.ServerMessage) -> list[ClientMessage]:
        """Messages sent right after `worker_message(msg)`'s, for work that must not block
        the event loop (ElevenLabs `committed_transcript_entities`: detection in a thread).
        The proxy awaits it before reading the next worker message, so order is kept."""
        ...
