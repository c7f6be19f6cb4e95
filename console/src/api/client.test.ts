import { afterEach, describe, expect, it, vi } from "vitest";

import { api, ApiError, CSRF_FAILURE_MESSAGE, CSRF_HEADER, errorMessage, getCsrfToken, isCsrfFailure, NETWORK_ERROR_MESSAGE, parseError, requestHeaders, setCsrfToken } from "./client";
import { fetchSession, login, logout } from "./endpoints";

function jsonResponse(status: number, body: unknown): Response {
  return new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

function headerOf(init: RequestInit | undefined, name: string): string | undefined {
  const headers = (init?.headers ?? {}) as Record<string, string>;
  return headers[name];
}

afterEach(() => {
  setCsrfToken(null);
  vi.unstubAllGlobals();
});

describe("CSRF header", () => {
  it("is attached to every mutating method and never to reads", () => {
    setCsrfToken("tok-123");
    for (const method of ["POST", "PUT", "PATCH", "DELETE", "post", "delete"]) {
      expect(requestHeaders(method)[CSRF_HEADER]).toBe("tok-123");
    }
    for (const method of ["GET", "HEAD", "OPTIONS"]) {
      expect(requestHeaders(method)[CSRF_HEADER]).toBeUndefined();
    }
  });

  it("is sent by api() on a POST and a DELETE, with the cookie (same-origin)", async () => {
    setCsrfToken("tok-abc");
    const fetchImpl = vi.fn(async () => jsonResponse(200, { ok: true }));
    await api("/v1/audio/transcriptions/x/cancel", { method: "POST", fetchImpl });
    await api("/v1/audio/transcriptions/x", { method: "DELETE", fetchImpl });
    await api("/v1/audio/transcriptions/x", { fetchImpl });
    const calls = fetchImpl.mock.calls as unknown as [string, RequestInit][];
    expect(headerOf(calls[0]?.[1], CSRF_HEADER)).toBe("tok-abc");
    expect(headerOf(calls[1]?.[1], CSRF_HEADER)).toBe("tok-abc");
    expect(headerOf(calls[2]?.[1], CSRF_HEADER)).toBeUndefined();
    for (const [, init] of calls) expect(init.credentials).toBe("same-origin");
  });

  it("is not invented when there is no session", () => {
    expect(requestHeaders("POST")[CSRF_HEADER]).toBeUndefined();
  });
});

describe("api() errors", () => {
  it("reads the gateway's error shape", async () => {
    const fetchImpl = vi.fn(async () => jsonResponse(409, { error: { code: "job_not_cancellable", message: "the job is already completed" } }));
    const err = await api("/x", { method: "POST", fetchImpl }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(409);
    expect((err as ApiError).code).toBe("job_not_cancellable");
    expect((err as ApiError).message).toBe("the job is already completed");
  });

  it("explains a stale CSRF token in plain words", () => {
    const err = parseError(403, JSON.stringify({ error: { code: "csrf_failed", message: "a request authenticated by the console session cookie must send..." } }));
    expect(isCsrfFailure(err)).toBe(true);
    expect(errorMessage(err)).toBe(CSRF_FAILURE_MESSAGE);
    expect(isCsrfFailure(parseError(403, JSON.stringify({ error: { code: "insufficient_scope", message: "no" } })))).toBe(false);
  });

  it("turns a network failure into plain words", async () => {
    const fetchImpl = vi.fn(async () => {
      throw new TypeError("Failed to fetch");
    });
    const err = (await api("/x", { fetchImpl }).catch((e: unknown) => e)) as ApiError;
    expect(err.status).toBe(0);
    expect(err.code).toBe("network_error");
    expect(err.message).toBe(NETWORK_ERROR_MESSAGE);
  });

  it("lets an abort through as an abort", async () => {
    const fetchImpl = vi.fn(async () => {
      throw new DOMException("aborted", "AbortError");
    });
    const err = await api("/x", { fetchImpl }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DOMException);
  });

  it("explains an HTML or empty error page by its status", () => {
    expect(parseError(502, "<html>Bad Gateway</html>").message).toBe("The gateway is unreachable (bad gateway) (HTTP 502).");
    expect(parseError(503, "").code).toBe("http_503");
    expect(parseError(418, "").message).toBe("The request failed (HTTP 418).");
  });

  it("reads FastAPI's validation shape", () => {
    const err = parseError(422, JSON.stringify({ detail: [{ loc: ["body", "api_key"], msg: "Field required" }] }));
    expect(err.message).toBe("api_key: Field required");
    expect(parseError(404, JSON.stringify({ detail: "Not Found" })).message).toBe("Not Found");
  });

  it("answers undefined for 204", async () => {
    const fetchImpl = vi.fn(async () => new Response(null, { status: 204 }));
    await expect(api("/x", { method: "DELETE", fetchImpl })).resolves.toBeUndefined();
  });

  it("refuses a 200 that is not JSON", async () => {
    const fetchImpl = vi.fn(async () => new Response("<html></html>", { status: 200 }));
    const err = (await api("/x", { fetchImpl }).catch((e: unknown) => e)) as ApiError;
    expect(err.code).toBe("invalid_response");
  });
});

describe("session", () => {
  const session = { key_id: "k1", tenant_id: "t1", scopes: ["jobs:read"], expires_at: null, csrf_token: "csrf-1" };

  it("login posts the key once and keeps only the CSRF token, in memory", async () => {
    const fetchMock = vi.fn(async (_url: string, _init?: RequestInit) => jsonResponse(201, session));
    vi.stubGlobal("fetch", fetchMock);
    const result = await login("dk_secret");
    expect(result.key_id).toBe("k1");
    expect(getCsrfToken()).toBe("csrf-1");
    const [url, init] = fetchMock.mock.calls[0] as [string, RequestInit];
    expect(url).toBe("/v1/console/session");
    expect(init.method).toBe("POST");
    expect(JSON.parse(init.body as string)).toEqual({ api_key: "dk_secret" });
  });

  it("a 401 from GET session means no session, not an error", async () => {
    setCsrfToken("stale");
    vi.stubGlobal("fetch", vi.fn(async () => jsonResponse(401, { error: { code: "not_authenticated", message: "no session" } })));
    await expect(fetchSession()).resolves.toBeNull();
    expect(getCsrfToken()).toBeNull();
  });

  it("GET session after a reload restores the token", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => jsonResponse(200, session)));
    await fetchSession();
    expect(getCsrfToken()).toBe("csrf-1");
  });

  it("other failures of GET session are errors", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => jsonResponse(500, { error: { code: "internal", message: "boom" } })));
    await expect(fetchSession()).rejects.toBeInstanceOf(ApiError);
  });

  it("logout sends the token and forgets it", async () => {
    setCsrfToken("csrf-9");
    const fetchMock = vi.fn(async (_url: string, _init?: RequestInit) => new Response(null, { status: 204 }));
    vi.stubGlobal("fetch", fetchMock);
    await logout();
    const [, init] = fetchMock.mock.calls[0] as [string, RequestInit];
    expect(init.method).toBe("DELETE");
    expect(headerOf(init, CSRF_HEADER)).toBe("csrf-9");
    expect(getCsrfToken()).toBeNull();
  });
});
