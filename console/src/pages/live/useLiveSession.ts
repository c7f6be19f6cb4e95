// One live session at a time: the microphone, the native WebSocket and what the server says.
//
// Start: microphone first (so a refused permission costs no worker slot), then the socket;
// frames captured while it opens are queued and sent once it is open, so the first words
// are not lost. Stop: the last short frame, then `{"type": "end"}`; the worker transcribes
// what it has, sends the last final and `session.end`, and closes.

import { useCallback, useEffect, useReducer, useRef, useState } from "react";

import { meterPercent } from "../../lib/pcm";
import { MicrophoneCapture, MicrophoneUnavailable, prefetchWorklet } from "./capture";
import {
  applyTranscript,
  describeClose,
  describeError,
  describeMicrophoneError,
  EMPTY_TRANSCRIPT,
  type LiveTranscript,
  parseServerMessage,
  type ServerMessage,
  type SessionStats,
  streamUrl,
} from "./protocol";

export type LivePhase = "idle" | "starting" | "connecting" | "live" | "ending" | "ended" | "failed";

export interface LiveState {
  phase: LivePhase;
  transcript: LiveTranscript;
  sessionId: string | null;
  model: string | null;
  device: string;
  error: string | null;
  /** The latest warning (or non-fatal error) and when it came, in seconds since Start. */
  warning: { text: string; at: number } | null;
  stats: SessionStats | null;
  speaking: boolean;
  /** When the microphone started and stopped (ms since the epoch), for the elapsed time. */
  startedAt: number | null;
  stoppedAt: number | null;
}

export const INITIAL: LiveState = {
  phase: "idle",
  transcript: EMPTY_TRANSCRIPT,
  sessionId: null,
  model: null,
  device: "",
  error: null,
  warning: null,
  stats: null,
  speaking: false,
  startedAt: null,
  stoppedAt: null,
};

export type LiveAction =
  | { kind: "start" }
  | { kind: "capturing"; at: number; device: string }
  | { kind: "message"; msg: ServerMessage }
  | { kind: "warning"; text: string; at: number }
  | { kind: "dismiss" }
  | { kind: "stopping"; at: number }
  | { kind: "closed"; at: number }
  | { kind: "fail"; error: string; at: number }
  | { kind: "cancel"; at: number };

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** How the page's state follows the microphone, the socket and the server's messages. */
export function liveReducer(state: LiveState, action: LiveAction): LiveState {
  switch (action.kind) {
    case "start":
      return { ...INITIAL, phase: "starting" };
    case "capturing":
      return { ...state, phase: "connecting", startedAt: action.at, device: action.device };
    case "warning": {
      const at = state.startedAt === null ? 0 : Math.max(0, (action.at - state.startedAt) / 1000);
      return { ...state, warning: { text: capitalise(action.text), at } };
    }
    case "dismiss":
      return { ...state, warning: null };
    case "stopping":
      return { ...state, phase: "ending", stoppedAt: action.at, speaking: false };
    case "closed":
      return state.phase === "failed" ? state : { ...state, phase: "ended", stoppedAt: state.stoppedAt ?? action.at, speaking: false };
    case "fail":
      return { ...state, phase: "failed", error: action.error, stoppedAt: state.stoppedAt ?? action.at, speaking: false };
    case "cancel":
      return { ...state, phase: "idle", stoppedAt: state.stoppedAt ?? action.at, speaking: false };
    case "message": {
      const msg = action.msg;
      switch (msg.type) {
        case "session.begin":
          return { ...state, phase: state.phase === "connecting" ? "live" : state.phase, sessionId: msg.session_id, model: typeof msg.config.model === "string" ? msg.config.model : null };
        case "vad.speech_start":
          return { ...state, speaking: true };
        case "vad.speech_end":
          return { ...state, speaking: false };
        case "session.end":
          return { ...state, stats: msg.stats, sessionId: state.sessionId ?? msg.session_id };
        case "transcript.partial":
        case "transcript.final":
          return { ...state, transcript: applyTranscript(state.transcript, msg) };
        default:
          return state;
      }
    }
  }
}

// Audio queued while the socket opens: 30 s of 16 kHz pcm_s16le, then the oldest goes.
const MAX_QUEUED_BYTES = 30 * 16_000 * 2;
// The gateway gives the worker realtime_end_timeout_s (30 s) to finish; a little more here.
const END_TIMEOUT_MS = 40_000;
const LEVEL_EVERY_MS = 80;

interface Connection {
  run: number;
  ws: WebSocket | null;
  capture: MicrophoneCapture | null;
  queue: ArrayBuffer[];
  queuedBytes: number;
  sawEnd: boolean;
  fatal: boolean;
  endTimer: number | null;
  levelAt: number;
}

export interface LiveControls {
  state: LiveState;
  /** The microphone level, 0-100. */
  level: number;
  start: (options: { model: string | null; language: string | null }) => Promise<void>;
  stop: () => void;
  dismissWarning: () => void;
}

export function useLiveSession(): LiveControls {
  const [state, dispatch] = useReducer(liveReducer, INITIAL);
  const [level, setLevel] = useState(0);
  const conn = useRef<Connection>({ run: 0, ws: null, capture: null, queue: [], queuedBytes: 0, sawEnd: false, fatal: false, endTimer: null, levelAt: 0 });

  const release = useCallback((c: Connection) => {
    c.capture?.stop();
    c.capture = null;
    c.queue = [];
    c.queuedBytes = 0;
    if (c.endTimer !== null) window.clearTimeout(c.endTimer);
    c.endTimer = null;
    setLevel(0);
  }, []);

  const start = useCallback(
    async (options: { model: string | null; language: string | null }) => {
      const c = conn.current;
      if (c.ws || c.capture) return;
      const run = ++c.run;
      c.sawEnd = false;
      c.fatal = false;
      dispatch({ kind: "start" });

      function send(frame: ArrayBuffer) {
        if (run !== c.run) return;
        if (c.ws?.readyState === WebSocket.OPEN) {
          c.ws.send(frame);
          return;
        }
        c.queue.push(frame);
        c.queuedBytes += frame.byteLength;
        while (c.queuedBytes > MAX_QUEUED_BYTES && c.queue.length > 1) c.queuedBytes -= c.queue.shift()?.byteLength ?? 0;
      }

      let capture: MicrophoneCapture;
      try {
        capture = await MicrophoneCapture.start({
          onFrame: send,
          onLevel: (db) => {
            const now = performance.now();
            if (now - c.levelAt < LEVEL_EVERY_MS) return;
            c.levelAt = now;
            setLevel(Math.round(meterPercent(db)));
          },
        });
      } catch (err) {
        if (run !== c.run) return;
        dispatch({ kind: "fail", error: err instanceof MicrophoneUnavailable ? err.message : describeMicrophoneError(err), at: Date.now() });
        return;
      }
      if (run !== c.run) {
        capture.stop(); // stopped (or left the page) while the browser asked for permission
        return;
      }
      c.capture = capture;
      dispatch({ kind: "capturing", at: Date.now(), device: capture.deviceLabel });

      const ws = new WebSocket(streamUrl(window.location, { ...options, sampleRate: capture.sampleRate }));
      ws.binaryType = "arraybuffer";
      c.ws = ws;
      ws.onopen = () => {
        if (run !== c.run) return;
        for (const frame of c.queue) ws.send(frame);
        c.queue = [];
        c.queuedBytes = 0;
      };
      ws.onmessage = (event: MessageEvent) => {
        if (run !== c.run || typeof event.data !== "string") return;
        const msg = parseServerMessage(event.data);
        if (!msg) return;
        if (msg.type === "error") {
          if (msg.fatal) {
            // The close follows; stop listening now rather than capture into a dead session.
            c.fatal = true;
            release(c);
            dispatch({ kind: "fail", error: describeError(msg), at: Date.now() });
          } else {
            dispatch({ kind: "warning", text: describeError(msg), at: Date.now() });
          }
          return;
        }
        if (msg.type === "warning") {
          dispatch({ kind: "warning", text: msg.message || msg.code, at: Date.now() });
          return;
        }
        if (msg.type === "session.end") c.sawEnd = true;
        dispatch({ kind: "message", msg });
      };
      ws.onclose = (event: CloseEvent) => {
        if (run !== c.run) return;
        c.ws = null;
        release(c);
        if (c.sawEnd || c.fatal) dispatch({ kind: "closed", at: Date.now() });
        else dispatch({ kind: "fail", error: describeClose(event.code, event.reason), at: Date.now() });
      };
    },
    [release],
  );

  const stop = useCallback(() => {
    const c = conn.current;
    const ws = c.ws;
    if (c.endTimer !== null) return; // already ending
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      // Nothing was sent yet (permission prompt, socket still opening): just call it off.
      c.run++;
      c.ws = null;
      ws?.close();
      release(c);
      dispatch({ kind: "cancel", at: Date.now() });
      return;
    }
    const last = c.capture?.stop() ?? null;
    c.capture = null;
    setLevel(0);
    if (last) ws.send(last);
    ws.send(JSON.stringify({ type: "end" }));
    dispatch({ kind: "stopping", at: Date.now() });
    c.endTimer = window.setTimeout(() => {
      if (c.ws !== ws) return;
      c.run++;
      c.ws = null;
      ws.close();
      release(c);
      dispatch({ kind: "fail", error: `The server did not finish the session within ${END_TIMEOUT_MS / 1000} s, so the page closed it; the last words may be missing.`, at: Date.now() });
    }, END_TIMEOUT_MS);
  }, [release]);

  // Leaving the page ends the session: closing the socket makes the gateway send the
  // worker `end` itself, so the session's finals and recording are still stored.
  useEffect(() => {
    const c = conn.current;
    prefetchWorklet();
    return () => {
      c.run++;
      c.ws?.close(1000, "left the page");
      c.ws = null;
      c.capture?.stop();
      c.capture = null;
      if (c.endTimer !== null) window.clearTimeout(c.endTimer);
    };
  }, []);

  const dismissWarning = useCallback(() => dispatch({ kind: "dismiss" }), []);

  return { state, level, start, stop, dismissWarning };
}
