// Realtime session history (gateway/realtime_sessions.py): endpoints and query hooks.

import { useQuery } from "@tanstack/react-query";

import { consecutiveFailures, POLL_MS, pollInterval } from "../lib/polling";
import { ApiError, api } from "./client";

const SESSIONS = "/v1/realtime/sessions";

export const SESSION_STATUSES = ["active", "completed", "interrupted", "failed"] as const;

export const sessionPaths = {
  list: SESSIONS,
  session: (id: string) => `${SESSIONS}/${encodeURIComponent(id)}`,
  transcript: (id: string) => `${SESSIONS}/${encodeURIComponent(id)}/transcript`,
  audio: (id: string) => `${SESSIONS}/${encodeURIComponent(id)}/audio`,
};

export interface SessionView {
  id: string;
  status: string;
  protocol: string;
  model: string;
  parameters: Record<string, unknown>;
  retain_audio: boolean;
  enhancement: Record<string, unknown> | null;
  worker_id: string | null;
  started_at: string;
  ended_at: string | null;
  audio_duration: number | null;
  recording_bytes: number | null;
  segment_count: number;
  word_count: number;
  error: string | null;
  enhancement_job_id: string | null;
  enhancement_error: string | null;
}

export interface SessionList {
  sessions: SessionView[];
  next_cursor: string | null;
  has_more: boolean;
}

/** A word of a final (shared/realtime/protocol.py StreamWord: `word`; `text` accepted too). */
export interface SessionWord {
  word?: string | null;
  text?: string | null;
  start: number;
  end: number;
  probability?: number | null;
}

export interface SessionSegment {
  utterance_id?: string | number | null;
  start: number;
  end: number;
  text: string;
  language?: string | null;
  words?: SessionWord[] | null;
}

export interface SessionTranscript {
  session_id: string;
  text: string;
  segments: SessionSegment[];
  status?: string;
}

export interface SessionsQuery {
  status?: string | null;
  cursor?: string | null;
  limit?: number;
}

export function sessionsUrl(q: SessionsQuery): string {
  const params = new URLSearchParams();
  params.set("limit", String(q.limit ?? 25));
  if (q.status) params.set("status", q.status);
  if (q.cursor) params.set("cursor", q.cursor);
  return `${SESSIONS}?${params.toString()}`;
}

export function fetchSessions(q: SessionsQuery, signal?: AbortSignal): Promise<SessionList> {
  return api<SessionList>(sessionsUrl(q), { signal });
}

export function fetchRealtimeSession(id: string, signal?: AbortSignal): Promise<SessionView> {
  return api<SessionView>(sessionPaths.session(id), { signal });
}

export function fetchSessionTranscript(id: string, signal?: AbortSignal): Promise<SessionTranscript> {
  return api<SessionTranscript>(sessionPaths.transcript(id), { signal });
}

export function deleteRealtimeSession(id: string): Promise<void> {
  return api<void>(sessionPaths.session(id), { method: "DELETE" });
}

export const sessionKeys = {
  all: ["realtime-sessions"] as const,
  list: (q: SessionsQuery) => ["realtime-sessions", q.status ?? "all", q.cursor ?? "first", q.limit ?? 25] as const,
  one: (id: string) => ["realtime-session", id] as const,
  transcript: (id: string) => ["realtime-session-transcript", id] as const,
};

export function useRealtimeSessions(q: SessionsQuery) {
  return useQuery({
    queryKey: sessionKeys.list(q),
    queryFn: ({ signal }) => fetchSessions(q, signal),
    placeholderData: (previous) => previous,
    refetchInterval: (query) => {
      if (consecutiveFailures(query) > 0) return pollInterval(query);
      return (query.state.data?.sessions ?? []).some((s) => s.status === "active") ? POLL_MS : false;
    },
    refetchIntervalInBackground: false,
    retry: 1,
  });
}

function stopOnClientError(error: unknown): boolean {
  return error instanceof ApiError && error.status >= 400 && error.status < 500;
}

export function useRealtimeSession(id: string) {
  return useQuery({
    queryKey: sessionKeys.one(id),
    queryFn: ({ signal }) => fetchRealtimeSession(id, signal),
    refetchInterval: (query) => {
      if (stopOnClientError(query.state.error)) return false;
      if (consecutiveFailures(query) > 0) return pollInterval(query, 2000);
      return query.state.data?.status === "active" ? 2000 : false;
    },
    refetchIntervalInBackground: false,
    retry: 1,
  });
}

export function useSessionTranscript(id: string, options: { enabled: boolean; live: boolean }) {
  return useQuery({
    queryKey: sessionKeys.transcript(id),
    queryFn: ({ signal }) => fetchSessionTranscript(id, signal),
    enabled: options.enabled,
    refetchInterval: (query) => (stopOnClientError(query.state.error) ? false : options.live ? 2000 : false),
    refetchIntervalInBackground: false,
    retry: 1,
  });
}
