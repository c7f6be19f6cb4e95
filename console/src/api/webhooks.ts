// /v1/webhooks (gateway/webhooks.py): endpoints of the session's tenant, their signing
// secret (shown only on create and rotate) and their delivery history. Needs the
// `webhooks` scope (admin implies it).

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";

import { pollInterval } from "../lib/polling";
import { PENDING_POLL_MS, hasPending, replaceDelivery } from "../lib/webhooks";
import type { DeliveryStatus, WebhookCreateBody } from "../lib/webhooks";
import { api } from "./client";

export interface WebhookInfo {
  id: string;
  url: string;
  events: string[];
  description: string | null;
  active: boolean;
  /** Set when deliveries turned the endpoint off (410 Gone). */
  disabled_reason: string | null;
  created_at: string;
  updated_at: string;
}

/** POST /v1/webhooks and POST …/rotate-secret answer with the secret, this once. */
export interface WebhookWithSecret extends WebhookInfo {
  secret: string;
}

export interface WebhookList {
  webhooks: WebhookInfo[];
}

export interface WebhookUpdateBody {
  url?: string;
  events?: string[];
  description?: string | null;
  active?: boolean;
}

export interface DeliveryAttempt {
  attempt: number;
  started_at: string;
  duration_ms: number;
  status_code: number | null;
  error: string | null;
  response_body: string | null;
}

export interface Delivery {
  id: string;
  job_id: string | null;
  event: string;
  format: string;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: string | null;
  last_status_code: number | null;
  last_error: string | null;
  created_at: string;
  finished_at: string | null;
  history: DeliveryAttempt[];
}

export interface DeliveryList {
  deliveries: Delivery[];
}

export const webhookPaths = {
  webhooks: "/v1/webhooks",
  webhook: (id: string) => `/v1/webhooks/${encodeURIComponent(id)}`,
  rotate: (id: string) => `/v1/webhooks/${encodeURIComponent(id)}/rotate-secret`,
  deliveries: (id: string, limit = 50) => `/v1/webhooks/${encodeURIComponent(id)}/deliveries?limit=${limit}`,
  redeliver: (id: string, deliveryId: string) =>
    `/v1/webhooks/${encodeURIComponent(id)}/deliveries/${encodeURIComponent(deliveryId)}/redeliver`,
};

export const webhookQueryKeys = {
  all: ["webhooks"] as const,
  list: ["webhooks", "list"] as const,
  deliveries: (id: string) => ["webhooks", "deliveries", id] as const,
};

export function fetchWebhooks(signal?: AbortSignal): Promise<WebhookList> {
  return api<WebhookList>(webhookPaths.webhooks, { signal });
}

export function fetchDeliveries(id: string, signal?: AbortSignal): Promise<DeliveryList> {
  return api<DeliveryList>(webhookPaths.deliveries(id), { signal });
}

export function createWebhook(body: WebhookCreateBody): Promise<WebhookWithSecret> {
  return api<WebhookWithSecret>(webhookPaths.webhooks, { method: "POST", json: body });
}

export function updateWebhook({ id, body }: { id: string; body: WebhookUpdateBody }): Promise<WebhookInfo> {
  return api<WebhookInfo>(webhookPaths.webhook(id), { method: "PATCH", json: body });
}

export function rotateWebhookSecret(id: string): Promise<WebhookWithSecret> {
  return api<WebhookWithSecret>(webhookPaths.rotate(id), { method: "POST" });
}

/** Queue a finished delivery again (202): same webhook-id, a new attempt in its history. */
export function redeliver({ webhookId, deliveryId }: { webhookId: string; deliveryId: string }): Promise<Delivery> {
  return api<Delivery>(webhookPaths.redeliver(webhookId, deliveryId), { method: "POST" });
}

export function deleteWebhook(id: string): Promise<void> {
  return api<void>(webhookPaths.webhook(id), { method: "DELETE" });
}

export function useWebhooks(enabled = true) {
  return useQuery({
    queryKey: webhookQueryKeys.list,
    queryFn: ({ signal }) => fetchWebhooks(signal),
    placeholderData: (previous) => previous,
    enabled,
  });
}

export function useDeliveries(id: string, enabled = true) {
  return useQuery({
    queryKey: webhookQueryKeys.deliveries(id),
    queryFn: ({ signal }) => fetchDeliveries(id, signal),
    enabled,
    // While a delivery is pending (e.g. just redelivered) its outcome is seconds away.
    refetchInterval: (query) => (hasPending(query.state.data?.deliveries) ? pollInterval(query, PENDING_POLL_MS) : false),
  });
}

export function useRedeliver() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: redeliver,
    // The answer is the delivery, pending again: shown at once, then polled until it settles.
    onSuccess: (delivery, { webhookId }) => {
      client.setQueryData<DeliveryList>(webhookQueryKeys.deliveries(webhookId), (list) => replaceDelivery(list, delivery));
      return client.invalidateQueries({ queryKey: webhookQueryKeys.deliveries(webhookId) });
    },
  });
}

// The create and rotate answers hold the secret: they are not put in the query cache,
// only the list is re-read.
export function useCreateWebhook() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: createWebhook,
    onSuccess: () => client.invalidateQueries({ queryKey: webhookQueryKeys.list }),
  });
}

export function useUpdateWebhook() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: updateWebhook,
    onSuccess: () => client.invalidateQueries({ queryKey: webhookQueryKeys.list }),
  });
}

export function useRotateWebhookSecret() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: rotateWebhookSecret,
    onSuccess: () => client.invalidateQueries({ queryKey: webhookQueryKeys.list }),
  });
}

export function useDeleteWebhook() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: deleteWebhook,
    // The deleted endpoint's deliveries would answer 404, so nothing may re-read them: an
    // in-flight read is cancelled, and the row that mounts the deliveries query leaves the
    // list at once. (Removing the query while its row is mounted would make it fetch again.)
    onMutate: (id) => client.cancelQueries({ queryKey: webhookQueryKeys.deliveries(id) }),
    onSuccess: (_answer, id) => {
      client.setQueryData<WebhookList>(webhookQueryKeys.list, (list) =>
        list ? { ...list, webhooks: list.webhooks.filter((w) => w.id !== id) } : list,
      );
      return client.invalidateQueries({ queryKey: webhookQueryKeys.list });
    },
  });
}
