// Pure logic for the API keys page (gateway/keys.py: KeyCreate, KeyOut).

/** The scopes POST /v1/keys accepts (gateway/keys.py `Scope`, gateway.auth.SCOPES). */
export const KEY_SCOPES = ["jobs:read", "jobs:write", "realtime", "webhooks", "admin"] as const;
export type KeyScope = (typeof KEY_SCOPES)[number];

export const SCOPE_HELP: Record<KeyScope, string> = {
  "jobs:read": "list and read jobs and transcripts",
  "jobs:write": "submit, cancel and delete jobs",
  realtime: "open realtime transcription sessions",
  webhooks: "manage webhook endpoints",
  admin: "manage keys of every tenant and read the audit log",
};

export type KeyStatus = "active" | "revoked" | "expired";

/** The expiry choices of the form, as KeyCreate.expires_in_seconds (60 s … 10 years), or null for never. */
export const EXPIRY_OPTIONS: readonly { value: string; label: string; seconds: number | null }[] = [
  { value: "never", label: "Never", seconds: null },
  { value: "1h", label: "In 1 hour", seconds: 3600 },
  { value: "1d", label: "In 1 day", seconds: 86400 },
  { value: "7d", label: "In 7 days", seconds: 7 * 86400 },
  { value: "30d", label: "In 30 days", seconds: 30 * 86400 },
  { value: "90d", label: "In 90 days", seconds: 90 * 86400 },
  { value: "365d", label: "In 1 year", seconds: 365 * 86400 },
];

export function expirySeconds(choice: string): number | null {
  return EXPIRY_OPTIONS.find((o) => o.value === choice)?.seconds ?? null;
}

/** When a key created now with that choice would expire (for the form's hint), or null for never. */
export function expiryPreview(choice: string, now: number = Date.now()): Date | null {
  const seconds = expirySeconds(choice);
  return seconds === null ? null : new Date(now + seconds * 1000);
}

/** Same pattern as the gateway's TENANT_NAME. */
export const TENANT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export interface KeyForm {
  name: string;
  scopes: string[];
  tenant: string;
  createTenant: boolean;
  expiry: string;
}

export interface KeyCreateBody {
  name: string;
  scopes: KeyScope[];
  tenant?: string;
  create_tenant?: boolean;
  expires_in_seconds?: number;
}

export function isKeyScope(scope: string): scope is KeyScope {
  return (KEY_SCOPES as readonly string[]).includes(scope);
}

/** Problems with the form, in plain words, keyed by field; empty when it can be sent. */
export function validateKeyForm(form: KeyForm): Partial<Record<"name" | "scopes" | "tenant", string>> {
  const errors: Partial<Record<"name" | "scopes" | "tenant", string>> = {};
  const name = form.name.trim();
  if (!name) errors.name = "Give the key a name, e.g. what it is for.";
  else if (name.length > 200) errors.name = "The name can be at most 200 characters.";
  else if (name.includes("\0")) errors.name = "The name cannot contain a NUL character.";
  if (!form.scopes.some(isKeyScope)) errors.scopes = "Choose at least one scope.";
  const tenant = form.tenant.trim();
  if (tenant && !TENANT_NAME.test(tenant)) {
    errors.tenant = "A tenant name is letters, digits, '.', '_' or '-' (starting with a letter or digit), at most 100 characters.";
  }
  return errors;
}

/** The POST /v1/keys body for a valid form: scopes in the API's order, tenant/expiry only when given. */
export function keyCreateBody(form: KeyForm): KeyCreateBody {
  const body: KeyCreateBody = { name: form.name.trim(), scopes: KEY_SCOPES.filter((s) => form.scopes.includes(s)) };
  const tenant = form.tenant.trim();
  if (tenant) {
    body.tenant = tenant;
    if (form.createTenant) body.create_tenant = true;
  }
  const seconds = expirySeconds(form.expiry);
  if (seconds !== null) body.expires_in_seconds = seconds;
  return body;
}

/** The status to show: the gateway's, or "expired" once expires_at has passed since it was fetched. */
export function keyStatus(key: { status: KeyStatus; expires_at: string | null }, now: number = Date.now()): KeyStatus {
  if (key.status !== "active" || !key.expires_at) return key.status;
  const at = new Date(key.expires_at).getTime();
  return !Number.isNaN(at) && at <= now ? "expired" : "active";
}

export const KEY_STATUS_COLORS: Record<KeyStatus, string> = { active: "green", revoked: "red", expired: "orange" };

/** Why a key's Revoke button is disabled, or null when it can be revoked. */
export function revokeBlockedReason(key: { id: string; status: KeyStatus }, sessionKeyId: string | null | undefined): string | null {
  if (key.status === "revoked") return "This key is already revoked.";
  if (sessionKeyId && key.id === sessionKeyId) {
    return "This is the key of your current console session: revoking it here would end the session. Log in with another admin key to revoke it.";
  }
  return null;
}

/** Keys sorted for the table: active first, then expired, then revoked; newest first within each. */
export function sortKeys<T extends { status: KeyStatus; created_at: string }>(list: readonly T[]): T[] {
  const rank: Record<KeyStatus, number> = { active: 0, expired: 1, revoked: 2 };
  return [...list].sort((a, b) => rank[a.status] - rank[b.status] || b.created_at.localeCompare(a.created_at));
}
