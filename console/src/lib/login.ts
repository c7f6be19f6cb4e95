// Pure logic for the login page (/console/login): the words for a refused login, and the
// wait after the gateway's brute-force throttle (gateway/console/login_throttle.py) said 429.

import { ApiError } from "../api/client";

/** When Retry-After is missing from a 429: the throttle's windows are minutes long. */
export const DEFAULT_WAIT_S = 60;

/** "45 s", "2 min", "4 min 10 s". */
export function formatWait(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  const rest = s % 60;
  return rest === 0 ? `${m} min` : `${m} min ${rest} s`;
}

/** The moment (ms since the epoch) a throttled login may be tried again, or null when not throttled. */
export function throttledUntil(err: unknown, now: number): number | null {
  if (!(err instanceof ApiError) || err.status !== 429) return null;
  const wait = err.retryAfterS ?? DEFAULT_WAIT_S;
  return now + Math.max(1, wait) * 1000;
}

/** Seconds left until `until` (rounded up; 0 when it has passed). */
export function secondsLeft(until: number | null, now: number): number {
  if (until === null) return 0;
  return Math.max(0, Math.ceil((until - now) / 1000));
}

export function throttledWords(seconds: number): string {
  return seconds > 0
    ? `Too many failed sign-ins from this address. Try again in ${formatWait(seconds)}.`
    : "You can try again now.";
}

export function loginErrorWords(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 401) return "That API key was not accepted. It may be mistyped, revoked or expired.";
    if (err.status === 429) return throttledWords(err.retryAfterS ?? DEFAULT_WAIT_S);
    if (err.status === 0) return err.message;
    return `The gateway refused the login: ${err.message}`;
  }
  return "The login failed for an unexpected reason. Try again.";
}
