// GET/POST /v1/keys and DELETE /v1/keys/{id} (gateway/keys.py). Admin scope only.

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";

import type { KeyCreateBody, KeyStatus } from "../lib/keys";
import { api } from "./client";

export interface TenantRef {
  id: string;
  name: string;
}

export interface ApiKeyInfo {
  id: string;
  name: string;
  prefix: string;
  tenant: TenantRef;
  scopes: string[];
  status: KeyStatus;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
}

/** POST /v1/keys's answer: the secret is in `key`, this once. */
export interface ApiKeyCreated extends ApiKeyInfo {
  key: string;
}

export interface ApiKeyList {
  keys: ApiKeyInfo[];
}

export const keyPaths = {
  keys: "/v1/keys",
  key: (id: string) => `/v1/keys/${encodeURIComponent(id)}`,
};

export const keyQueryKeys = {
  all: ["keys"] as const,
  list: (includeRevoked: boolean) => ["keys", includeRevoked ? "with-revoked" : "active"] as const,
};

export function fetchKeys(includeRevoked: boolean, signal?: AbortSignal): Promise<ApiKeyList> {
  return api<ApiKeyList>(`${keyPaths.keys}?include_revoked=${includeRevoked ? "true" : "false"}`, { signal });
}

export function createKey(body: KeyCreateBody): Promise<ApiKeyCreated> {
  return api<ApiKeyCreated>(keyPaths.keys, { method: "POST", json: body });
}

export function revokeKey(id: string): Promise<ApiKeyInfo> {
  return api<ApiKeyInfo>(keyPaths.key(id), { method: "DELETE" });
}

export function useKeys(includeRevoked: boolean, enabled = true) {
  return useQuery({
    queryKey: keyQueryKeys.list(includeRevoked),
    queryFn: ({ signal }) => fetchKeys(includeRevoked, signal),
    placeholderData: (previous) => previous,
    enabled,
  });
}

export function useCreateKey() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: createKey,
    // The answer holds the secret: it is not put in the query cache, only the list is re-read.
    onSuccess: () => client.invalidateQueries({ queryKey: keyQueryKeys.all }),
  });
}

export function useRevokeKey() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: revokeKey,
    onSuccess: () => client.invalidateQueries({ queryKey: keyQueryKeys.all }),
  });
}
