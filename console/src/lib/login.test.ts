import { describe, expect, it } from "vitest";

import { ApiError, parseRetryAfter } from "../api/client";
import { DEFAULT_WAIT_S, formatWait, loginErrorWords, secondsLeft, throttledUntil, throttledWords } from "./login";

function throttled(retryAfterS: number | null): ApiError {
  const err = new ApiError(429, "rate_limited", "too many failed logins from this address: try again in 42 s");
  err.retryAfterS = retryAfterS;
  return err;
}

describe("formatWait", () => {
  it("shows seconds, then minutes", () => {
    expect(formatWait(0)).toBe("0 s");
    expect(formatWait(44.2)).toBe("45 s");
    expect(formatWait(120)).toBe("2 min");
    expect(formatWait(250)).toBe("4 min 10 s");
  });
});

describe("throttledUntil", () => {
  it("uses Retry-After from a 429", () => {
    expect(throttledUntil(throttled(42), 1000)).toBe(43_000);
  });
  it("falls back to a default wait when the header is missing", () => {
    expect(throttledUntil(throttled(null), 0)).toBe(DEFAULT_WAIT_S * 1000);
  });
  it("waits at least a second", () => {
    expect(throttledUntil(throttled(0), 0)).toBe(1000);
  });
  it("is null for anything but a 429", () => {
    expect(throttledUntil(new ApiError(401, "invalid_api_key", "no"), 0)).toBeNull();
    expect(throttledUntil(new Error("boom"), 0)).toBeNull();
  });
});

describe("secondsLeft", () => {
  it("counts down and stops at zero", () => {
    expect(secondsLeft(10_000, 0)).toBe(10);
    expect(secondsLeft(10_000, 9_001)).toBe(1);
    expect(secondsLeft(10_000, 12_000)).toBe(0);
    expect(secondsLeft(null, 0)).toBe(0);
  });
});

describe("loginErrorWords", () => {
  it("says how long to wait when throttled", () => {
    expect(loginErrorWords(throttled(42))).toBe("Too many failed sign-ins from this address. Try again in 42 s.");
    expect(throttledWords(0)).toBe("You can try again now.");
  });
  it("keeps the plain words for a wrong key and a network failure", () => {
    expect(loginErrorWords(new ApiError(401, "invalid_api_key", "x"))).toMatch(/not accepted/);
    expect(loginErrorWords(new ApiError(0, "network_error", "Could not reach"))).toBe("Could not reach");
    expect(loginErrorWords("?")).toMatch(/unexpected/);
  });
});

describe("parseRetryAfter", () => {
  it("reads delta-seconds and HTTP dates", () => {
    expect(parseRetryAfter("42")).toBe(42);
    expect(parseRetryAfter(null)).toBeNull();
    expect(parseRetryAfter("soon")).toBeNull();
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(parseRetryAfter("Thu, 01 Jan 2026 00:00:30 GMT", now)).toBe(30);
  });
});
