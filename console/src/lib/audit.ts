// Pure logic for the audit log page (GET /v1/audit, gateway/keys.py; actions in gateway/audit.py).

/** The actions the gateway writes today (gateway/audit.py). */
export const AUDIT_ACTIONS = [
  "auth.failed",
  "console.login",
  "console.logout",
  "console.tenant_switched",
  "key.created",
  "key.revoked",
  "tenant.created",
  "token.issued",
  "job.deleted",
  "job.speakers_renamed",
  "job.rerun",
  "job.purged",
  "session.purged",
  "transcript.exported",
  "webhook.created",
  "webhook.deleted",
  "webhook.secret_rotated",
  "webhook.redelivered",
  "webhook.updated",
  "speaker.enrolled",
  "speaker.deleted",
] as const;

export const AUDIT_OUTCOMES = ["success", "failure"] as const;

/** Time ranges offered by the page, in seconds back from now. */
export const AUDIT_RANGES: Record<string, { label: string; seconds: number }> = {
  "1h": { label: "Last hour", seconds: 3600 },
  "24h": { label: "Last 24 hours", seconds: 86400 },
  "7d": { label: "Last 7 days", seconds: 7 * 86400 },
  "30d": { label: "Last 30 days", seconds: 30 * 86400 },
};

export interface AuditFilters {
  action?: string | null;
  outcome?: string | null;
  tenant_id?: string | null;
  actor_key_id?: string | null;
  resource_id?: string | null;
  since?: string | null;
  until?: string | null;
  cursor?: string | null;
  limit?: number;
}

/** The filters the API supports, in the order they go into the query string. */
const FILTER_NAMES = ["action", "outcome", "tenant_id", "actor_key_id", "resource_id", "since", "until", "cursor"] as const;

/** The query string of GET /v1/audit for these filters (empty values left out). */
export function auditQueryString(f: AuditFilters): string {
  const params = new URLSearchParams();
  params.set("limit", String(f.limit ?? 50));
  for (const name of FILTER_NAMES) {
    const value = f[name]?.trim();
    if (value) params.set(name, value);
  }
  return params.toString();
}

/** Whether `range` is one of AUDIT_RANGES's own keys (not "toString" and the like). */
export function isRange(range: string | null | undefined): range is string {
  return range != null && Object.prototype.hasOwnProperty.call(AUDIT_RANGES, range);
}

/** The `since` of a time range key ("24h"), as an ISO timestamp; null for "all" or an unknown key. */
export function sinceFor(range: string | null | undefined, now: number): string | null {
  const r = isRange(range) ? AUDIT_RANGES[range] : undefined;
  if (!r) return null;
  return new Date(now - r.seconds * 1000).toISOString();
}

/** The page's filters as read from its URL (?action=…&outcome=…&range=…&cursor=…). */
export function filtersFromParams(params: URLSearchParams): { action: string | null; outcome: string | null; range: string | null; tenant_id: string | null; actor_key_id: string | null; resource_id: string | null; cursor: string | null } {
  const get = (name: string) => params.get(name)?.trim() || null;
  const outcome = get("outcome");
  const range = get("range");
  return {
    action: get("action"),
    outcome: outcome && (AUDIT_OUTCOMES as readonly string[]).includes(outcome) ? outcome : null,
    range: isRange(range) ? range : null,
    tenant_id: get("tenant_id"),
    actor_key_id: get("actor_key_id"),
    resource_id: get("resource_id"),
    cursor: get("cursor"),
  };
}

function formatValue(value: unknown): string {
  if (value === null || value === undefined) return "—";
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return value.length === 0 ? "[]" : value.map(formatValue).join(", ");
  return JSON.stringify(value);
}

/** A details object as `key: value` pairs; nested objects flattened as `a.b`, lists joined with ", ". */
export function detailEntries(details: Record<string, unknown> | null | undefined, maxValue = 80): [string, string][] {
  const out: [string, string][] = [];
  function walk(prefix: string, obj: Record<string, unknown>) {
    for (const [key, value] of Object.entries(obj)) {
      const name = prefix ? `${prefix}.${key}` : key;
      if (value !== null && typeof value === "object" && !Array.isArray(value)) {
        const nested = value as Record<string, unknown>;
        if (Object.keys(nested).length === 0) out.push([name, "{}"]);
        else walk(name, nested);
      } else {
        const text = formatValue(value);
        out.push([name, text.length > maxValue ? `${text.slice(0, maxValue - 1)}…` : text]);
      }
    }
  }
  if (details && typeof details === "object") walk("", details);
  return out;
}

/** The details on one line: "name: ci · prefix: dk_abc". */
export function formatDetails(details: Record<string, unknown> | null | undefined): string {
  return detailEntries(details)
    .map(([k, v]) => `${k}: ${v}`)
    .join(" · ");
}

/** The console page of an event's resource, if it has one. */
export function resourceLink(type: string | null | undefined, id: string | null | undefined): string | null {
  if (!type || !id) return null;
  if (type === "job") return `/jobs/${encodeURIComponent(id)}`;
  if (type === "realtime_session" || type === "session") return `/sessions/${encodeURIComponent(id)}`;
  return null;
}

/** The badge colour of an outcome. */
export function outcomeColor(outcome: string): string {
  if (outcome === "success") return "green";
  if (outcome === "failure") return "red";
  return "gray";
}

const ACTION_COLORS: Record<string, string> = {
  auth: "red",
  console: "blue",
  key: "grape",
  tenant: "violet",
  token: "cyan",
  job: "orange",
  transcript: "teal",
  webhook: "indigo",
};

/** The badge colour of an action, by its family ("key.created" → the colour of "key"). */
export function actionColor(action: string): string {
  return ACTION_COLORS[action.split(".")[0] ?? ""] ?? "gray";
}

/** The first 8 characters of an id, for narrow columns. */
export function shortId(id: string | null | undefined): string {
  return id ? id.slice(0, 8) : "—";
}
