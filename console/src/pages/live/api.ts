// GET /v1/realtime/status (gateway/realtime/status.py): which models the ready workers
// serve, on which backend, and how many session slots are free.

import { useQuery } from "@tanstack/react-query";

import { api } from "../../api/client";
import type { RealtimeStats } from "../../api/types";
import { pollInterval } from "../../lib/polling";

export interface RealtimeStatus extends RealtimeStats {
  /** model -> the realtime backend that serves it (shared.catalogue.REALTIME_BACKENDS). */
  backends?: Record<string, string>;
}

export const REALTIME_STATUS_PATH = "/v1/realtime/status";

export function useRealtimeStatus(enabled: boolean) {
  return useQuery({
    queryKey: ["realtime-status"],
    queryFn: ({ signal }) => api<RealtimeStatus>(REALTIME_STATUS_PATH, { signal }),
    enabled,
    refetchInterval: (query) => pollInterval(query, 10_000),
    refetchIntervalInBackground: false,
  });
}
