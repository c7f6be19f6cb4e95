// Pure logic of the engines, models and settings pages: health of an engine, heartbeat
// ages, formatting of settings. Only what the gateway measured: null in, "—" out.

import { DASH, formatDuration } from "./format";

/** Mantine Badge styles that show the whole label in the case it was written (Mantine cuts
 *  long labels with an ellipsis and upper-cases them: "1.2 S AGO" reads badly). */
export const FULL_BADGE = { root: { overflow: "visible", maxWidth: "none", textTransform: "none" }, label: { overflow: "visible" } } as const;

/** An engine heartbeats every 5 s at most (shared/engine_heartbeat.py); twice that is late. */
export const FRESH_HEARTBEAT_S = 10;

export type EngineHealth = "stalled" | "busy" | "idle" | "unconfigured" | "stopped";

export interface EngineLike {
  unconfigured: string | null;
  instances: readonly { current_task_id: string | null }[];
  queue: { lag: number | null; pending: number } | null;
}

/** Tasks nobody is working on: undelivered ones, plus (with no instance alive) delivered ones
 *  that a dead instance held. */
export function waitingTasks(e: EngineLike): number {
  if (!e.queue) return 0;
  const lag = e.queue.lag ?? 0;
  return e.instances.length === 0 ? lag + e.queue.pending : lag;
}

export function engineHealth(e: EngineLike): EngineHealth {
  if (e.instances.length === 0) {
    if (waitingTasks(e) > 0) return "stalled";
    return e.unconfigured ? "unconfigured" : "stopped";
  }
  return e.instances.some((i) => i.current_task_id) ? "busy" : "idle";
}

export const HEALTH: Record<EngineHealth, { label: string; color: string; hint: string }> = {
  stalled: { label: "no instance running", color: "red", hint: "work is queued and no engine process is alive to take it" },
  busy: { label: "running a task", color: "blue", hint: "at least one instance is working on a task" },
  idle: { label: "idle", color: "green", hint: "instances are alive and waiting for work" },
  unconfigured: { label: "not configured", color: "gray", hint: "its weights are not set, so it cannot run" },
  stopped: { label: "no instance", color: "gray", hint: "no engine process is running; nothing is queued for it" },
};

/** The age of a heartbeat now: the gateway's measurement plus the time since it answered. */
export function heartbeatAge(ageAtFetch: number, fetchedAt: number, now: number): number {
  return Math.max(0, ageAtFetch + Math.max(0, now - fetchedAt) / 1000);
}

export function isFresh(ageSeconds: number | null | undefined): boolean {
  return ageSeconds != null && Number.isFinite(ageSeconds) && ageSeconds <= FRESH_HEARTBEAT_S;
}

/** "0.4 s ago", "12 s ago", "3 min ago"; "—" without a value. */
export function formatAge(seconds: number | null | undefined): string {
  if (seconds == null || !Number.isFinite(seconds) || seconds < 0) return DASH;
  if (seconds < 10) return `${seconds.toFixed(1)} s ago`;
  return `${formatDuration(seconds)} ago`;
}

/** A run time or wait: "340 ms", "4.3 s", "2 min 5 s". */
export function formatSeconds(seconds: number | null | undefined): string {
  if (seconds == null || !Number.isFinite(seconds) || seconds < 0) return DASH;
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  return formatDuration(seconds);
}

/** Sessions in use of a worker's capacity, 0–100. */
export function loadPercent(active: number, capacity: number): number {
  if (!(capacity > 0)) return 0;
  return Math.min(100, Math.round((active / capacity) * 100));
}

/** A setting's value as one line of text; a secret shows only whether it is set. */
export function settingText(s: { value: unknown; secret: boolean; is_set: boolean }): string {
  if (s.secret) return s.is_set ? "•••••• (set, hidden)" : "not set";
  const v = s.value;
  if (v === null || v === undefined || v === "") return "not set";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (Array.isArray(v) && v.length === 0) return "[] (none)";
  if (typeof v === "object" && Object.keys(v as object).length === 0) return "{} (none)";
  return JSON.stringify(v);
}

/** Settings whose name, variable or (non-secret) value contains `query`, groups without a match dropped. */
export function filterSettings<G extends { name: string; settings: S[] }, S extends { name: string; env: string; value: unknown; secret: boolean; is_set: boolean }>(
  groups: readonly G[],
  query: string,
): G[] {
  const q = query.trim().toLowerCase();
  if (!q) return [...groups];
  return groups
    .map((g) => ({ ...g, settings: g.settings.filter((s) => [s.name, s.env, settingText(s)].some((t) => t.toLowerCase().includes(q))) }))
    .filter((g) => g.settings.length > 0);
}
