// Pure logic for the webhooks page (/console/webhooks): the events the gateway accepts,
// the create form's checks and body, and how endpoints and deliveries are shown.
// gateway/webhooks.py + shared/webhooks.py are the source of truth.

/** shared/webhooks.py: EVENTS. */
export const WEBHOOK_EVENTS = ["job.completed", "job.failed", "job.cancelled"] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export const EVENT_HELP: Record<WebhookEvent, string> = {
  "job.completed": "a job finished with a transcript",
  "job.failed": "a job failed",
  "job.cancelled": "a job was cancelled",
};

/** gateway/webhooks.py: WebhookCreate's limits. */
export const MAX_URL_LENGTH = 2000;
export const MAX_DESCRIPTION_LENGTH = 500;

export type DeliveryStatus = "pending" | "delivered" | "failed";

export const DELIVERY_STATUS_COLORS: Record<string, string> = {
  pending: "yellow",
  delivered: "teal",
  failed: "red",
};

export interface WebhookForm {
  url: string;
  events: string[];
  description: string;
}

export interface WebhookCreateBody {
  url: string;
  events: WebhookEvent[];
  description?: string;
}

export type WebhookFormErrors = Partial<Record<keyof WebhookForm, string>>;

export function isWebhookEvent(value: string): value is WebhookEvent {
  return (WEBHOOK_EVENTS as readonly string[]).includes(value);
}

/** The checks the gateway makes on its own that can be made here (it also resolves the host). */
export function validateWebhookForm(form: WebhookForm): WebhookFormErrors {
  const errors: WebhookFormErrors = {};
  const url = form.url.trim();
  if (!url) {
    errors.url = "Enter the URL that should receive the events";
  } else if (url.length > MAX_URL_LENGTH) {
    errors.url = `The URL may be at most ${MAX_URL_LENGTH} characters`;
  } else {
    let parsed: URL | null = null;
    try {
      parsed = new URL(url);
    } catch {
      parsed = null;
    }
    if (!parsed || !parsed.hostname) errors.url = "Enter a full URL, e.g. https://example.com/dalston";
    else if (parsed.protocol !== "http:" && parsed.protocol !== "https:") errors.url = "The URL must start with http:// or https://";
    else if (parsed.username || parsed.password) errors.url = "The URL must not contain credentials; verify the signature instead";
  }
  if (form.events.length === 0) errors.events = "Choose at least one event";
  else if (!form.events.every(isWebhookEvent)) errors.events = "Unknown event";
  if (form.description.trim().length > MAX_DESCRIPTION_LENGTH) {
    errors.description = `The description may be at most ${MAX_DESCRIPTION_LENGTH} characters`;
  }
  return errors;
}

/** POST /v1/webhooks's body: events in the gateway's order, no empty description. */
export function webhookCreateBody(form: WebhookForm): WebhookCreateBody {
  const body: WebhookCreateBody = {
    url: form.url.trim(),
    events: WEBHOOK_EVENTS.filter((event) => form.events.includes(event)),
  };
  const description = form.description.trim();
  if (description) body.description = description;
  return body;
}

/** Whether an endpoint is on, off by hand, or turned off by deliveries (disabled_reason). */
export type EndpointState = "active" | "disabled" | "auto-disabled";

export function endpointState(endpoint: { active: boolean; disabled_reason: string | null }): EndpointState {
  if (endpoint.active) return "active";
  return endpoint.disabled_reason ? "auto-disabled" : "disabled";
}

export const ENDPOINT_STATE_COLORS: Record<EndpointState, string> = {
  active: "teal",
  disabled: "gray",
  "auto-disabled": "orange",
};

/** Newest first, like the API's deliveries; ties broken by id for a stable order. */
export function sortEndpoints<T extends { id: string; created_at: string }>(list: readonly T[]): T[] {
  return [...list].sort((a, b) => b.created_at.localeCompare(a.created_at) || a.id.localeCompare(b.id));
}

/** An HTTP status code's colour: 2xx fine, 4xx/5xx bad, none (no answer) dimmed. */
export function statusCodeColor(code: number | null | undefined): string {
  if (code === null || code === undefined) return "gray";
  if (code >= 200 && code < 300) return "teal";
  if (code >= 300 && code < 400) return "yellow";
  return "red";
}

/** A receiver's answer, shortened for a table cell. */
export function truncate(text: string | null | undefined, max = 120): string {
  if (!text) return "";
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** How often a delivery list with a pending delivery is re-read. */
export const PENDING_POLL_MS = 2000;

export function hasPending(deliveries: readonly { status: string }[] | undefined): boolean {
  return (deliveries ?? []).some((d) => d.status === "pending");
}

/** The list with `delivery` in place of the row with its id (the list as it was when absent). */
export function replaceDelivery<D extends { id: string }, L extends { deliveries: D[] }>(list: L | undefined, delivery: D): L | undefined {
  if (!list) return list;
  return { ...list, deliveries: list.deliveries.map((d) => (d.id === delivery.id ? delivery : d)) };
}

/**
 * Why a delivery cannot be redelivered now, or null when it can (gateway/webhooks.py's
 * redeliver: 409 while the endpoint is disabled or the delivery is still pending).
 */
export function redeliverBlocker(
  delivery: { status: string },
  endpoint: { active: boolean },
  allowed: boolean,
): string | null {
  if (!allowed) return "Needs the webhooks scope";
  if (!endpoint.active) return "Enable the endpoint first";
  if (delivery.status === "pending") return "Already queued: it will be attempted on its own";
  return null;
}

/** The edit form, filled from an endpoint. */
export function editForm(endpoint: { url: string; events: readonly string[]; description: string | null }): WebhookForm {
  return { url: endpoint.url, events: [...endpoint.events], description: endpoint.description ?? "" };
}

export interface WebhookPatchBody {
  url?: string;
  events?: WebhookEvent[];
  description?: string | null;
}

/** PATCH /v1/webhooks/{id}'s body: only what changed (a cleared description is null). */
export function webhookPatchBody(
  endpoint: { url: string; events: readonly string[]; description: string | null },
  form: WebhookForm,
): WebhookPatchBody {
  const next = webhookCreateBody(form);
  const body: WebhookPatchBody = {};
  if (next.url !== endpoint.url) body.url = next.url;
  const before = WEBHOOK_EVENTS.filter((event) => endpoint.events.includes(event));
  if (next.events.join(",") !== before.join(",")) body.events = next.events;
  const description = next.description ?? null;
  if (description !== (endpoint.description ?? null)) body.description = description;
  return body;
}
