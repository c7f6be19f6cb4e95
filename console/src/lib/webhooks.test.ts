import { describe, expect, it } from "vitest";

import {
  WEBHOOK_EVENTS,
  editForm,
  endpointState,
  hasPending,
  redeliverBlocker,
  replaceDelivery,
  webhookPatchBody,
  sortEndpoints,
  statusCodeColor,
  truncate,
  validateWebhookForm,
  webhookCreateBody,
} from "./webhooks";
import type { WebhookForm } from "./webhooks";

const form = (over: Partial<WebhookForm> = {}): WebhookForm => ({ url: "https://example.com/hook", events: ["job.completed"], description: "", ...over });

describe("events", () => {
  it("are the gateway's three", () => {
    expect([...WEBHOOK_EVENTS]).toEqual(["job.completed", "job.failed", "job.cancelled"]);
  });
});

describe("validateWebhookForm", () => {
  it("accepts a plain form", () => {
    expect(validateWebhookForm(form())).toEqual({});
    expect(validateWebhookForm(form({ url: "http://93.184.215.14:8080/x?y=1" }))).toEqual({});
  });
  it("needs a URL and an event", () => {
    const errors = validateWebhookForm(form({ url: " ", events: [] }));
    expect(errors.url).toMatch(/URL/);
    expect(errors.events).toMatch(/event/);
  });
  it("refuses what the gateway refuses by syntax", () => {
    expect(validateWebhookForm(form({ url: "example.com/hook" })).url).toBeDefined();
    expect(validateWebhookForm(form({ url: "ftp://example.com/hook" })).url).toMatch(/http/);
    expect(validateWebhookForm(form({ url: "https://user:pw@example.com/hook" })).url).toMatch(/credentials/);
    expect(validateWebhookForm(form({ url: `https://example.com/${"a".repeat(2000)}` })).url).toMatch(/2000/);
    expect(validateWebhookForm(form({ events: ["job.started"] })).events).toBeDefined();
    expect(validateWebhookForm(form({ description: "d".repeat(501) })).description).toMatch(/500/);
  });
});

describe("webhookCreateBody", () => {
  it("trims, orders events and drops an empty description", () => {
    expect(webhookCreateBody(form({ url: " https://example.com/hook ", events: ["job.failed", "job.completed"] }))).toEqual({
      url: "https://example.com/hook",
      events: ["job.completed", "job.failed"],
    });
    expect(webhookCreateBody(form({ description: "  prod " })).description).toBe("prod");
  });
});

describe("endpointState", () => {
  it("tells apart on, off and turned off by deliveries", () => {
    expect(endpointState({ active: true, disabled_reason: null })).toBe("active");
    expect(endpointState({ active: false, disabled_reason: null })).toBe("disabled");
    expect(endpointState({ active: false, disabled_reason: "410 Gone" })).toBe("auto-disabled");
  });
});

describe("sortEndpoints", () => {
  it("puts the newest first, stably", () => {
    const list = [
      { id: "b", created_at: "2026-01-01T00:00:00Z" },
      { id: "c", created_at: "2026-02-01T00:00:00Z" },
      { id: "a", created_at: "2026-01-01T00:00:00Z" },
    ];
    expect(sortEndpoints(list).map((e) => e.id)).toEqual(["c", "a", "b"]);
  });
});

describe("statusCodeColor and truncate", () => {
  it("colours status codes", () => {
    expect(statusCodeColor(null)).toBe("gray");
    expect(statusCodeColor(204)).toBe("teal");
    expect(statusCodeColor(301)).toBe("yellow");
    expect(statusCodeColor(410)).toBe("red");
    expect(statusCodeColor(503)).toBe("red");
  });
  it("shortens long answers", () => {
    expect(truncate(null)).toBe("");
    expect(truncate("a\n b")).toBe("a b");
    expect(truncate("x".repeat(10), 5)).toBe("xxxx…");
  });
});

describe("redeliverBlocker", () => {
  const on = { active: true };
  it("allows a finished delivery of an active endpoint", () => {
    expect(redeliverBlocker({ status: "failed" }, on, true)).toBeNull();
    expect(redeliverBlocker({ status: "delivered" }, on, true)).toBeNull();
  });
  it("says why not: scope, disabled endpoint, still pending", () => {
    expect(redeliverBlocker({ status: "failed" }, on, false)).toMatch(/scope/);
    expect(redeliverBlocker({ status: "failed" }, { active: false }, true)).toMatch(/Enable/);
    expect(redeliverBlocker({ status: "pending" }, on, true)).toMatch(/queued/);
  });
});

describe("pending deliveries", () => {
  it("are noticed", () => {
    expect(hasPending(undefined)).toBe(false);
    expect(hasPending([{ status: "delivered" }, { status: "failed" }])).toBe(false);
    expect(hasPending([{ status: "delivered" }, { status: "pending" }])).toBe(true);
  });
  it("replace their row in place", () => {
    const list = { deliveries: [{ id: "a", status: "failed" }, { id: "b", status: "delivered" }] };
    expect(replaceDelivery(list, { id: "a", status: "pending" })?.deliveries).toEqual([
      { id: "a", status: "pending" },
      { id: "b", status: "delivered" },
    ]);
    expect(replaceDelivery(list, { id: "z", status: "pending" })?.deliveries).toEqual(list.deliveries);
    expect(replaceDelivery(undefined, { id: "a", status: "pending" })).toBeUndefined();
  });
});

describe("webhookPatchBody", () => {
  const endpoint = { url: "https://example.com/hook", events: ["job.failed", "job.completed"], description: "prod" };
  it("is empty when nothing changed (events in any order)", () => {
    expect(editForm(endpoint)).toEqual({ url: endpoint.url, events: endpoint.events, description: "prod" });
    expect(webhookPatchBody(endpoint, editForm(endpoint))).toEqual({});
  });
  it("sends only what changed, trimmed, events in the gateway's order", () => {
    const body = webhookPatchBody(endpoint, { url: " https://example.com/new ", events: ["job.cancelled", "job.completed"], description: "prod" });
    expect(body).toEqual({ url: "https://example.com/new", events: ["job.completed", "job.cancelled"] });
  });
  it("clears a description with null", () => {
    expect(webhookPatchBody(endpoint, { ...editForm(endpoint), description: "  " })).toEqual({ description: null });
    expect(webhookPatchBody({ ...endpoint, description: null }, { ...editForm(endpoint), description: "new" })).toEqual({ description: "new" });
  });
});
