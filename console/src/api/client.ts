// The console's only way to talk to the gateway. Every request carries the session cookie
// (same origin); every mutating request carries the CSRF token, which lives in this
// module's memory only and is re-read from GET /v1/console/session after a reload.
// The API key itself is sent once, to POST /v1/console/session, and never stored.

import type { ErrorBody } from "./types";

export const MUTATING_METHODS: ReadonlySet<string> = new Set(["POST", "PUT", "PATCH", "DELETE"]);
export const CSRF_HEADER = "X-CSRF-Token";

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  /** Seconds from the response's Retry-After header (429s), when it had one. */
  retryAfterS: number | null = null;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

/** Retry-After as seconds (the gateway sends delta-seconds; an HTTP date is accepted too). */
export function parseRetryAfter(value: string | null, now = Date.now()): number | null {
  if (!value) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - now) / 1000));
}

let csrfToken: string | null = null;

export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

export function getCsrfToken(): string | null {
  return csrfToken;
}

export function isMutating(method: string): boolean {
  return MUTATING_METHODS.has(method.toUpperCase());
}

/** Headers for a request: JSON accept, plus the CSRF token on mutating methods. */
export function requestHeaders(method: string, extra?: Record<string, string>): Record<string, string> {
  const headers: Record<string, string> = { Accept: "application/json", ...extra };
  if (isMutating(method) && csrfToken) headers[CSRF_HEADER] = csrfToken;
  return headers;
}

const STATUS_WORDS: Record<number, string> = {
  400: "The request was not accepted",
  401: "Your session has ended or the API key is not valid",
  403: "This API key is not allowed to do that",
  404: "Not found",
  409: "That is not possible in the current state",
  413: "The file is too large",
  429: "Too many requests; slow down and try again",
  500: "The gateway had an internal error",
  502: "The gateway is unreachable (bad gateway)",
  503: "The gateway is unavailable",
  504: "The gateway did not answer in time",
};

/** Plain-words fallback for a status without a JSON error body. */
export function statusMessage(status: number): string {
  return STATUS_WORDS[status] ?? (status >= 500 ? "The gateway had an error" : "The request failed");
}

/** An ApiError from a failed response's status and body text (JSON or not). */
export function parseError(status: number, bodyText: string): ApiError {
  let body: ErrorBody | null = null;
  try {
    body = bodyText ? (JSON.parse(bodyText) as ErrorBody) : null;
  } catch {
    body = null;
  }
  const info = body && typeof body === "object" ? body.error : undefined;
  if (info && typeof info === "object" && typeof info.message === "string" && info.message) {
    return new ApiError(status, info.code ?? `http_${status}`, info.message);
  }
  // FastAPI's own validation shape: {"detail": [{"loc": [...], "msg": "..."}]} or {"detail": "..."}.
  const detail = body && typeof body === "object" ? body.detail : undefined;
  if (typeof detail === "string" && detail) return new ApiError(status, `http_${status}`, detail);
  if (Array.isArray(detail) && detail.length > 0) {
    const first = detail[0] as { msg?: unknown; loc?: unknown };
    const where = Array.isArray(first.loc) ? first.loc.filter((p) => p !== "body").join(".") : "";
    if (typeof first.msg === "string") {
      return new ApiError(status, "invalid_request", where ? `${where}: ${first.msg}` : first.msg);
    }
  }
  return new ApiError(status, `http_${status}`, `${statusMessage(status)} (HTTP ${status}).`);
}

export const NETWORK_ERROR_MESSAGE = "Could not reach the Dalston gateway. Check that it is running and that this machine can reach it.";

export interface RequestOptions {
  method?: string;
  json?: unknown;
  signal?: AbortSignal;
  /** For tests. */
  fetchImpl?: typeof fetch;
}

/** A JSON request to the gateway; resolves to the parsed body (undefined for 204), rejects with ApiError. */
export async function api<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const method = (options.method ?? "GET").toUpperCase();
  const doFetch = options.fetchImpl ?? fetch;
  const extra: Record<string, string> = options.json !== undefined ? { "Content-Type": "application/json" } : {};
  let response: Response;
  try {
    response = await doFetch(path, {
      method,
      credentials: "same-origin",
      headers: requestHeaders(method, extra),
      body: options.json !== undefined ? JSON.stringify(options.json) : undefined,
      signal: options.signal,
    });
  } catch (err) {
    if (err instanceof DOMException && err.name === "AbortError") throw err;
    throw new ApiError(0, "network_error", NETWORK_ERROR_MESSAGE);
  }
  const text = await response.text();
  if (!response.ok) {
    const error = parseError(response.status, text);
    error.retryAfterS = parseRetryAfter(response.headers?.get("Retry-After") ?? null);
    throw error;
  }
  if (response.status === 204 || text === "") return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ApiError(response.status, "invalid_response", "The gateway answered with something that is not JSON.");
  }
}

export function isUnauthorized(err: unknown): boolean {
  return err instanceof ApiError && err.status === 401;
}

export function isCsrfFailure(err: unknown): boolean {
  return err instanceof ApiError && err.status === 403 && err.code === "csrf_failed";
}

export const CSRF_FAILURE_MESSAGE =
  "This tab's session changed (for example, someone logged in again in another tab). The console has re-read it: try again.";

/** Words for an error anywhere in the UI. */
export function errorMessage(err: unknown): string {
  if (isCsrfFailure(err)) return CSRF_FAILURE_MESSAGE;
  if (err instanceof ApiError) return err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}
