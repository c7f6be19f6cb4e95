import { describe, expect, it } from "vitest";

import { actionColor, auditQueryString, detailEntries, filtersFromParams, formatDetails, outcomeColor, resourceLink, shortId, sinceFor } from "./audit";

describe("auditQueryString", () => {
  it("has the limit and nothing else by default", () => {
    expect(auditQueryString({})).toBe("limit=50");
    expect(auditQueryString({ limit: 25 })).toBe("limit=25");
  });
  it("passes every filter the API supports, leaving out empty ones", () => {
    const q = new URLSearchParams(
      auditQueryString({
        action: "key.created",
        outcome: "failure",
        tenant_id: "t1",
        actor_key_id: "k1",
        resource_id: " r1 ",
        since: "2025-01-01T00:00:00.000Z",
        until: "",
        cursor: "42",
        limit: 10,
      }),
    );
    expect(Object.fromEntries(q)).toEqual({
      limit: "10",
      action: "key.created",
      outcome: "failure",
      tenant_id: "t1",
      actor_key_id: "k1",
      resource_id: "r1",
      since: "2025-01-01T00:00:00.000Z",
      cursor: "42",
    });
  });
  it("encodes values", () => {
    expect(auditQueryString({ since: "2025-01-01T00:00:00+01:00" })).toBe("limit=50&since=2025-01-01T00%3A00%3A00%2B01%3A00");
  });
});

describe("sinceFor", () => {
  const now = Date.UTC(2025, 0, 2, 12, 0, 0);
  it("turns a range into an aware ISO timestamp", () => {
    expect(sinceFor("1h", now)).toBe("2025-01-02T11:00:00.000Z");
    expect(sinceFor("24h", now)).toBe("2025-01-01T12:00:00.000Z");
  });
  it("is null for all time or an unknown range", () => {
    expect(sinceFor(null, now)).toBeNull();
    expect(sinceFor("all", now)).toBeNull();
    expect(sinceFor("toString", now)).toBeNull();
  });
});

describe("filtersFromParams", () => {
  it("reads the page URL and drops values the API would refuse", () => {
    const f = filtersFromParams(new URLSearchParams("action=auth.failed&outcome=maybe&range=2y&cursor=9&resource_id="));
    expect(f).toEqual({ action: "auth.failed", outcome: null, range: null, tenant_id: null, actor_key_id: null, resource_id: null, cursor: "9" });
    expect(filtersFromParams(new URLSearchParams("outcome=failure&range=7d")).outcome).toBe("failure");
    expect(filtersFromParams(new URLSearchParams("outcome=failure&range=7d")).range).toBe("7d");
  });
});

describe("details", () => {
  it("renders key: value pairs", () => {
    expect(formatDetails({ name: "ci", prefix: "dk_abc1234" })).toBe("name: ci · prefix: dk_abc1234");
    expect(formatDetails({})).toBe("");
    expect(formatDetails(null)).toBe("");
  });
  it("flattens nested objects and joins lists", () => {
    expect(detailEntries({ scopes: ["jobs:read", "admin"], limits: { rps: 5, burst: null }, empty: {}, none: [], ok: true })).toEqual([
      ["scopes", "jobs:read, admin"],
      ["limits.rps", "5"],
      ["limits.burst", "—"],
      ["empty", "{}"],
      ["none", "[]"],
      ["ok", "true"],
    ]);
  });
  it("shortens long values", () => {
    const v = detailEntries({ path: "x".repeat(200) }, 20)[0]?.[1] ?? "";
    expect(v).toHaveLength(20);
    expect(v.endsWith("…")).toBe(true);
  });
});

describe("links and colours", () => {
  it("links jobs and realtime sessions only", () => {
    expect(resourceLink("job", "abc")).toBe("/jobs/abc");
    expect(resourceLink("realtime_session", "s1")).toBe("/sessions/s1");
    expect(resourceLink("api_key", "k")).toBeNull();
    expect(resourceLink("job", null)).toBeNull();
  });
  it("colours outcomes and action families", () => {
    expect(outcomeColor("success")).toBe("green");
    expect(outcomeColor("failure")).toBe("red");
    expect(outcomeColor("other")).toBe("gray");
    expect(actionColor("auth.failed")).toBe("red");
    expect(actionColor("key.revoked")).toBe("grape");
    expect(actionColor("mystery")).toBe("gray");
  });
  it("shortens ids", () => {
    expect(shortId("0123456789abcdef")).toBe("01234567");
    expect(shortId(null)).toBe("—");
  });
});
