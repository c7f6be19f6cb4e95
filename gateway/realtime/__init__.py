"""Realtime WebSocket sessions at the gateway.

- `edge`: the `Edge` protocol every client-facing wire protocol implements, and `Refused`.
- `native`: `WS /v1/audio/transcriptions/stream`, the native protocol (passed through).
- `proxy`: what every session goes through whatever its protocol: authentication, model
  and option checks, the worker reservation and its lease, the session row, the relay.
- `status`: `GET /v1/realtime/status`.

The ElevenLabs protocol is gateway.elevenlabs.realtime; the session history REST API is
gateway.realtime_sessions. Workers are reached only through shared.realtime.
"""
