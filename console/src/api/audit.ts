// GET /v1/audit (gateway/keys.py): the audit log, newest first. Admin scope only.

import { useQuery } from "@tanstack/react-query";

import { auditQueryString, type AuditFilters } from "../lib/audit";
import { api } from "./client";

const AUDIT = "/v1/audit";

export interface AuditEvent {
  id: number;
  created_at: string;
  action: string;
  outcome: string;
  tenant_id: string | null;
  actor_key_id: string | null;
  resource_type: string | null;
  resource_id: string | null;
  request_id: string | null;
  client_ip: string | null;
  details: Record<string, unknown>;
}

export interface AuditList {
  events: AuditEvent[];
  next_cursor: string | null;
}

export function auditUrl(f: AuditFilters): string {
  return `${AUDIT}?${auditQueryString(f)}`;
}

export function fetchAudit(f: AuditFilters, signal?: AbortSignal): Promise<AuditList> {
  return api<AuditList>(auditUrl(f), { signal });
}

export const auditKeys = {
  all: ["audit"] as const,
  list: (f: AuditFilters) => ["audit", auditQueryString(f)] as const,
};

export function useAudit(f: AuditFilters) {
  return useQuery({
    queryKey: auditKeys.list(f),
    queryFn: ({ signal }) => fetchAudit(f, signal),
    placeholderData: (previous) => previous,
    retry: 1,
  });
}
