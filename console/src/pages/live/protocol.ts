// The native realtime protocol as the live page speaks it (shared/realtime/protocol.py):
// the socket URL, the server's messages, and the transcript they build up. Pure logic;
// the socket and the microphone live in useLiveSession.ts.

export const STREAM_PATH = "/v1/audio/transcriptions/stream";

/** Options the page lets an operator choose (a subset of SessionParams). */
export interface LiveOptions {
  model: string | null;
  language: string | null;
  sampleRate: number;
}

/**
 * The same-origin WebSocket URL: the console's session cookie authenticates it (the gateway
 * accepts the cookie on WebSockets whose Origin is its own host), so no key is in the URL.
 */
export function streamUrl(location: Pick<Location, "protocol" | "host">, options: LiveOptions): string {
  const params = new URLSearchParams();
  if (options.model) params.set("model", options.model);
  if (options.language) params.set("language", options.language);
  params.set("encoding", "pcm_s16le");
  params.set("sample_rate", String(options.sampleRate));
  params.set("interim_results", "true");
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${STREAM_PATH}?${params.toString()}`;
}

export interface SessionBegin {
  type: "session.begin";
  session_id: string;
  config: Record<string, unknown>;
}
export interface TranscriptPartial {
  type: "transcript.partial";
  utterance_id: number;
  text: string;
  start: number;
  end: number;
}
export interface TranscriptFinal {
  type: "transcript.final";
  utterance_id: number;
  text: string;
  start: number;
  end: number;
  language: string | null;
  reason: string;
  latency_ms: number;
}
export interface WarningMessage {
  type: "warning";
  code: string;
  message: string;
  lag_seconds?: number;
}
export interface ErrorMessage {
  type: "error";
  code: string;
  message: string;
  fatal: boolean;
}
export interface SessionStats {
  audio_seconds: number;
  session_seconds: number;
  finals: number;
  partials: number;
  errors: number;
  max_lag_seconds: number;
  final_latency_ms_p50: number | null;
  final_latency_ms_max: number | null;
}
export interface SessionEnd {
  type: "session.end";
  session_id: string;
  stats: SessionStats;
}
export interface SpeechEvent {
  type: "vad.speech_start" | "vad.speech_end";
  timestamp: number;
}

export type ServerMessage = SessionBegin | TranscriptPartial | TranscriptFinal | WarningMessage | ErrorMessage | SessionEnd | SpeechEvent;

const TYPES: ReadonlySet<string> = new Set([
  "session.begin",
  "transcript.partial",
  "transcript.final",
  "warning",
  "error",
  "session.end",
  "vad.speech_start",
  "vad.speech_end",
]);

/** A server text frame, or null when it is not a message this page knows. */
export function parseServerMessage(text: string): ServerMessage | null {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof data !== "object" || data === null) return null;
  const type = (data as { type?: unknown }).type;
  return typeof type === "string" && TYPES.has(type) ? (data as ServerMessage) : null;
}

export interface LiveFinal {
  utteranceId: number;
  text: string;
  start: number;
  end: number;
  latencyMs: number | null;
}

export interface LiveTranscript {
  finals: LiveFinal[];
  /** The open utterance's latest preview; replaced by later partials and by its final. */
  partial: { utteranceId: number; text: string; start: number } | null;
}

export const EMPTY_TRANSCRIPT: LiveTranscript = { finals: [], partial: null };

/** The transcript after one partial or final (other messages leave it as it is). */
export function applyTranscript(t: LiveTranscript, msg: ServerMessage): LiveTranscript {
  if (msg.type === "transcript.partial") {
    // A partial of an utterance that already has its final arrived late: ignore it.
    if (t.finals.some((f) => f.utteranceId === msg.utterance_id)) return t;
    return { ...t, partial: { utteranceId: msg.utterance_id, text: msg.text, start: msg.start } };
  }
  if (msg.type === "transcript.final") {
    const partial = t.partial && t.partial.utteranceId > msg.utterance_id ? t.partial : null;
    const text = msg.text.trim();
    // An empty final (noise the VAD took for speech) only clears its partial.
    if (!text) return { ...t, partial };
    const final: LiveFinal = { utteranceId: msg.utterance_id, text, start: msg.start, end: msg.end, latencyMs: msg.latency_ms ?? null };
    return { finals: [...t.finals, final], partial };
  }
  return t;
}

/** The finals as one text. */
export function transcriptText(t: LiveTranscript): string {
  return t.finals.map((f) => f.text).join(" ");
}

const ERROR_WORDS: Record<string, string> = {
  no_capacity: "Every realtime worker slot is busy. Try again in a moment, or start more realtime workers.",
  model_unavailable: "No realtime worker serves this model. Pick another model, or start a worker that serves it.",
  unauthorized: "The console session was not accepted for live transcription. Log in again.",
  forbidden: "This API key may not open realtime sessions (it lacks the realtime scope).",
  invalid_request: "The server refused the session's settings.",
  lag_exceeded: "Transcription fell too far behind the audio, so the server ended the session.",
  idle_timeout: "The server received no audio for too long and closed the session.",
  worker_lost: "The realtime worker serving this session stopped.",
  transcriber_error: "The model failed while transcribing.",
  rate_limited: "This tenant is sending too many requests. Try again shortly.",
  too_many_concurrent_sessions: "This tenant already has as many realtime sessions open as it may. End one, then try again.",
};

/** A server `error` message in plain words, keeping the server's own detail. */
export function describeError(msg: Pick<ErrorMessage, "code" | "message">): string {
  const words = ERROR_WORDS[msg.code];
  if (!words) return msg.message || `The server reported ${msg.code}.`;
  return msg.message ? `${words} (${msg.message})` : words;
}

/** A socket that closed without `session.end` or an error message, in plain words. */
export function describeClose(code: number, reason: string): string {
  const why = reason ? `: ${reason}` : "";
  if (code === 1006) return "The connection to the server was lost (closed without a close frame). Check the gateway is running and reachable.";
  if (code === 1013) return `The server is busy; try again later (close 1013${why}).`;
  if (code === 1008) return `The server refused the session (close 1008${why}).`;
  if (code === 1011) return `The server failed during the session (close 1011${why}).`;
  return `The connection closed unexpectedly (close ${code}${why}).`;
}

/** Why getUserMedia failed, in words an operator can act on. */
export function describeMicrophoneError(err: unknown): string {
  const name = err instanceof DOMException || err instanceof Error ? err.name : "";
  switch (name) {
    case "NotAllowedError":
    case "SecurityError":
      return "Microphone access was denied. Allow the microphone for this site in the browser's address bar or settings, then press Start again.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No microphone was found. Connect one (or pick an input in the system's sound settings) and press Start again.";
    case "NotReadableError":
    case "AbortError":
      return "The microphone could not be opened; another application may be using it.";
    default:
      return `The microphone could not be started: ${err instanceof Error ? err.message : String(err)}`;
  }
}

/** "0:07.4": a session-relative time for a final's timestamp. */
export function formatOffset(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "0:00.0";
  const m = Math.floor(seconds / 60);
  const s = seconds - m * 60;
  return `${m}:${s.toFixed(1).padStart(4, "0")}`;
}

/** Plausible language codes: ISO 639-1/3 ("en", "de", "yue"), empty for detection. */
export function languageProblem(value: string): string | null {
  if (value === "" || /^[a-z]{2,3}$/.test(value)) return null;
  return "Use a lowercase ISO 639-1 code such as en or de, or leave it empty to detect";
}

/** Whether a model name is English-only (the registry's rule: whisper's `.en` models). */
export function englishOnly(model: string | null): boolean {
  return Boolean(model && model.endsWith(".en"));
}
