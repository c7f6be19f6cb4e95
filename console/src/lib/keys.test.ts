import { describe, expect, it } from "vitest";

import { KEY_SCOPES, expiryPreview, expirySeconds, keyCreateBody, keyStatus, revokeBlockedReason, sortKeys, validateKeyForm } from "./keys";
import type { KeyForm } from "./keys";

const form = (over: Partial<KeyForm> = {}): KeyForm => ({ name: "ci", scopes: ["jobs:read"], tenant: "", createTenant: false, expiry: "never", ...over });

describe("scopes", () => {
  it("are the gateway's five", () => {
    expect([...KEY_SCOPES]).toEqual(["jobs:read", "jobs:write", "realtime", "webhooks", "admin"]);
  });
});

describe("expiry", () => {
  it("maps choices to seconds and never to null", () => {
    expect(expirySeconds("never")).toBeNull();
    expect(expirySeconds("1h")).toBe(3600);
    expect(expirySeconds("30d")).toBe(30 * 86400);
    expect(expirySeconds("bogus")).toBeNull();
  });
  it("previews the expiry time", () => {
    expect(expiryPreview("never", 0)).toBeNull();
    expect(expiryPreview("1d", 1000)?.getTime()).toBe(1000 + 86400_000);
  });
});

describe("validateKeyForm", () => {
  it("accepts a plain form", () => {
    expect(validateKeyForm(form())).toEqual({});
  });
  it("needs a name and a scope", () => {
    const errors = validateKeyForm(form({ name: "  ", scopes: [] }));
    expect(errors.name).toMatch(/name/);
    expect(errors.scopes).toMatch(/scope/);
  });
  it("refuses unknown scopes only", () => {
    expect(validateKeyForm(form({ scopes: ["nope"] })).scopes).toBeDefined();
  });
  it("checks the tenant name like the gateway", () => {
    expect(validateKeyForm(form({ tenant: "team-a.prod_1" })).tenant).toBeUndefined();
    expect(validateKeyForm(form({ tenant: "-bad" })).tenant).toBeDefined();
    expect(validateKeyForm(form({ tenant: "has space" })).tenant).toBeDefined();
  });
  it("limits the name to 200 characters", () => {
    expect(validateKeyForm(form({ name: "x".repeat(201) })).name).toBeDefined();
  });
});

describe("keyCreateBody", () => {
  it("sends only what was given, scopes in the API's order", () => {
    expect(keyCreateBody(form({ name: " ci ", scopes: ["admin", "jobs:read"] }))).toEqual({ name: "ci", scopes: ["jobs:read", "admin"] });
  });
  it("adds tenant, create_tenant and expires_in_seconds", () => {
    expect(keyCreateBody(form({ tenant: "acme", createTenant: true, expiry: "7d" }))).toEqual({
      name: "ci",
      scopes: ["jobs:read"],
      tenant: "acme",
      create_tenant: true,
      expires_in_seconds: 7 * 86400,
    });
  });
  it("drops create_tenant without a tenant", () => {
    expect(keyCreateBody(form({ createTenant: true }))).toEqual({ name: "ci", scopes: ["jobs:read"] });
  });
});

describe("keyStatus", () => {
  const now = Date.parse("2026-01-01T00:00:00Z");
  it("keeps revoked and expired", () => {
    expect(keyStatus({ status: "revoked", expires_at: null }, now)).toBe("revoked");
    expect(keyStatus({ status: "expired", expires_at: "2025-01-01T00:00:00Z" }, now)).toBe("expired");
  });
  it("turns an active key whose expiry has passed into expired", () => {
    expect(keyStatus({ status: "active", expires_at: "2025-12-31T23:59:59Z" }, now)).toBe("expired");
    expect(keyStatus({ status: "active", expires_at: "2026-01-02T00:00:00Z" }, now)).toBe("active");
    expect(keyStatus({ status: "active", expires_at: null }, now)).toBe("active");
  });
});

describe("revokeBlockedReason", () => {
  it("blocks the session's own key and revoked keys", () => {
    expect(revokeBlockedReason({ id: "a", status: "active" }, "a")).toMatch(/current console session/);
    expect(revokeBlockedReason({ id: "a", status: "revoked" }, "b")).toMatch(/already revoked/);
    expect(revokeBlockedReason({ id: "a", status: "active" }, "b")).toBeNull();
    expect(revokeBlockedReason({ id: "a", status: "expired" }, null)).toBeNull();
  });
});

describe("sortKeys", () => {
  it("puts active first, newest first", () => {
    const list = [
      { id: "1", status: "revoked" as const, created_at: "2026-01-03T00:00:00Z" },
      { id: "2", status: "active" as const, created_at: "2026-01-01T00:00:00Z" },
      { id: "3", status: "active" as const, created_at: "2026-01-02T00:00:00Z" },
      { id: "4", status: "expired" as const, created_at: "2026-01-04T00:00:00Z" },
    ];
    expect(sortKeys(list).map((k) => k.id)).toEqual(["3", "2", "4", "1"]);
  });
});
