// Pure logic for the realtime session pages.

import { formatDuration } from "./format";

export interface SessionLike {
  status: string;
  retain_audio: boolean;
  recording_bytes: number | null;
  audio_duration?: number | null;
}

export type PlayerState = { kind: "player" } | { kind: "none"; reason: string };

/** Whether the session's recording can be played, and if not, why (in plain words). */
export function playerState(s: SessionLike): PlayerState {
  if (!s.retain_audio) return { kind: "none", reason: "This session was run without retention (retain_audio=false): no audio or transcript was stored." };
  if (s.recording_bytes != null && s.recording_bytes > 0) return { kind: "player" };
  if (s.status === "active") return { kind: "none", reason: "The session is still running; its recording can be played when it has ended." };
  return { kind: "none", reason: "No audio was recorded for this session." };
}

/** A session's audio length for tables: "—" while unknown, with "so far" for a running one. */
export function sessionDuration(s: { status: string; audio_duration: number | null }): string {
  const text = formatDuration(s.audio_duration);
  return s.status === "active" && s.audio_duration != null ? `${text} so far` : text;
}

/** "1 word", "1,234 words". */
export function formatCount(n: number | null | undefined, unit: string): string {
  if (n == null || !Number.isFinite(n)) return "—";
  return `${n.toLocaleString("en-US")} ${unit}${n === 1 ? "" : "s"}`;
}

/** Whether the session kept a playable recording. */
export function hasRecording(s: SessionLike): boolean {
  return s.retain_audio && s.recording_bytes != null && s.recording_bytes > 0;
}

/** Whether any of the sessions is still running (the list then refreshes itself). */
export function anyActive(sessions: readonly { status: string }[]): boolean {
  return sessions.some((s) => s.status === "active");
}

/** The protocol as people say it. */
export function protocolLabel(protocol: string): string {
  if (protocol === "native") return "Native";
  if (protocol === "elevenlabs") return "ElevenLabs";
  if (protocol === "openai") return "OpenAI";
  return protocol;
}

const STATUS_COLORS: Record<string, string> = { active: "blue", completed: "green", interrupted: "orange", failed: "red" };

/** The badge colour of a session status. */
export function sessionStatusColor(status: string): string {
  return STATUS_COLORS[status] ?? "gray";
}

/** The text of a stored realtime word (`word` in the protocol; `text` accepted too). */
export function sessionWordText(w: { word?: string | null; text?: string | null }): string {
  return (w.word ?? w.text ?? "").trim();
}

/**
 * The gateway streams a session's WAV without range support, so a browser cannot seek in it
 * as it plays. Recordings up to this size are fetched whole and played from memory (seekable);
 * larger ones play straight from the URL.
 */
export const SEEKABLE_BLOB_MAX_BYTES = 64 * 1024 * 1024;

export function loadWhole(recordingBytes: number | null | undefined): boolean {
  return recordingBytes != null && recordingBytes > 0 && recordingBytes <= SEEKABLE_BLOB_MAX_BYTES;
}
