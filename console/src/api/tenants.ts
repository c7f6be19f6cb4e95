// GET /v1/tenants (admin) and PUT /v1/console/session/tenant: an admin's session acts for
// another tenant. The switch lives in the server-side session, so the audio player,
// downloads and WebSockets follow it too.

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";

import { api, setCsrfToken } from "./client";
import { keys as queryKeys } from "./queries";
import type { Session } from "./types";

export interface TenantInfo {
  id: string;
  name: string;
  created_at: string;
  active_keys: number;
}

export function useTenants(enabled: boolean) {
  return useQuery({
    queryKey: ["tenants"],
    queryFn: async () => (await api<{ tenants: TenantInfo[] }>("/v1/tenants")).tenants,
    enabled,
    staleTime: 60_000,
  });
}

export function useSwitchTenant() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (tenantId: string | null) => api<Session>("/v1/console/session/tenant", { method: "PUT", json: { tenant_id: tenantId } }),
    onSuccess: (session) => {
      setCsrfToken(session.csrf_token);
      client.setQueryData(queryKeys.session, session);
      // Everything else on screen belonged to the previous tenant.
      client.removeQueries({ predicate: (q) => q.queryKey[0] !== "session" && q.queryKey[0] !== "tenants" });
    },
  });
}
