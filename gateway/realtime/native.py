"""`WS /v1/audio/transcriptions/stream`: the native realtime protocol (shared.realtime.protocol),
passed through to the worker with only the frame sizes checked here."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import APIRouter, WebSocket
from pydantic import ValidationError

from gateway.realtime.edge import MAX_CONTROL_FRAME_CHARS, ClientMessage, Refused, Translated
from gateway.realtime.proxy import RealtimeAuth, serve
from shared.realtime import protocol as p
from shared.settings import Settings

router = APIRouter(tags=["realtime"])


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
    def error(code: str, message: str) -> ClientMessage:
        return p.error(code, message, fatal=True).model_dump(mode="json")

    def client_text(self, text: str) -> Translated:
        # The worker validates native control messages itself; only their size is checked here.
        if len(text) > MAX_CONTROL_FRAME_CHARS:
            message = f"control messages are at most {MAX_CONTROL_FRAME_CHARS} characters; dropped"
            return Translated([], [p.error(p.INVALID_MESSAGE, message).model_dump(mode="json")])
        return Translated([text], [])

    def client_bytes(self, data: bytes) -> Translated:
        limit = self.settings.realtime_max_chunk_bytes
        if len(data) > limit:  # refused here so an oversize frame never reaches the worker
            message = f"audio frame of {len(data)} bytes exceeds the {limit}-byte limit; dropped"
            return Translated([], [p.error(p.CHUNK_TOO_LARGE, message).model_dump(mode="json")])
        return Translated([data], [])

    def worker_message(self, msg: p.ServerMessage) -> list[ClientMessage]:
        return [msg.model_dump(mode="json")]

    async def follow_up(self, msg: p.ServerMessage) -> list[ClientMessage]:
        return []


@router.websocket("/v1/audio/transcriptions/stream")
async def native_stream(ws: WebSocket, auth: RealtimeAuth) -> None:
    await serve(ws, auth, NativeEdge)
