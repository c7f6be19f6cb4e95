import { MutationCache, QueryCache, QueryClient, useQuery } from "@tanstack/react-query";

import { consecutiveFailures, POLL_MS, pollInterval } from "../lib/polling";
import { ApiError, isCsrfFailure, isUnauthorized, setCsrfToken } from "./client";
import { fetchJob, fetchJobs, fetchModels, fetchOverview, fetchSession } from "./endpoints";
import type { JobsQuery } from "./endpoints";
import { ACTIVE_STATUSES } from "./types";

export const keys = {
  session: ["session"] as const,
  overview: (tenantId: string | null) => ["overview", tenantId ?? "all"] as const,
  jobs: (q: JobsQuery) => ["jobs", q.status ?? "all", q.cursor ?? "first", q.limit ?? 25] as const,
  jobsAll: ["jobs"] as const,
  job: (id: string) => ["job", id] as const,
  models: ["models"] as const,
};

function retry(failureCount: number, error: unknown): boolean {
  // Client errors will not get better by asking again; network and 5xx might.
  if (error instanceof ApiError && error.status >= 400 && error.status < 500) return false;
  return failureCount < 2;
}

export function createQueryClient(): QueryClient {
  const client: QueryClient = new QueryClient({
    queryCache: new QueryCache({
      onError: (error, query) => {
        // Any 401 means the session cookie is gone or expired: drop to the login page.
        if (isUnauthorized(error) && query.queryKey[0] !== "session") endSession(client);
      },
    }),
    mutationCache: new MutationCache({
      onError: (error) => {
        if (isUnauthorized(error)) endSession(client);
        // A stale CSRF token (the cookie now belongs to a newer session): re-read it.
        else if (isCsrfFailure(error)) void client.invalidateQueries({ queryKey: keys.session });
      },
    }),
    defaultOptions: {
      queries: { retry, staleTime: 2000, refetchOnWindowFocus: true },
      mutations: { retry: false },
    },
  });
  return client;
}

export function endSession(client: QueryClient): void {
  setCsrfToken(null);
  client.setQueryData(keys.session, null);
  client.removeQueries({ predicate: (q) => q.queryKey[0] !== "session" });
}


export function useSession() {
  return useQuery({
    queryKey: keys.session,
    queryFn: fetchSession,
    staleTime: 60_000,
    retry,
  });
}

export function useOverview(tenantId: string | null = null) {
  return useQuery({
    queryKey: keys.overview(tenantId),
    queryFn: ({ signal }) => fetchOverview(tenantId, signal),
    placeholderData: (previous) => previous,
    refetchInterval: (q) => pollInterval(q),
    refetchIntervalInBackground: false,
    retry: 1,
  });
}

export function useJobs(query: JobsQuery) {
  return useQuery({
    queryKey: keys.jobs(query),
    queryFn: ({ signal }) => fetchJobs(query, signal),
    placeholderData: (previous) => previous,
    refetchInterval: (q) => {
      const jobs = q.state.data?.jobs ?? [];
      if (consecutiveFailures(q) > 0) return pollInterval(q);
      return jobs.some((j) => ACTIVE_STATUSES.includes(j.status)) ? POLL_MS : false;
    },
    refetchIntervalInBackground: false,
    retry: 1,
  });
}

export function useJob(id: string, options: { enabled?: boolean; fast?: boolean } = {}) {
  return useQuery({
    queryKey: keys.job(id),
    queryFn: ({ signal }) => fetchJob(id, signal),
    enabled: options.enabled ?? true,
    refetchInterval: (q) => {
      const error = q.state.error;
      if (error instanceof ApiError && error.status >= 400 && error.status < 500) return false;
      if (consecutiveFailures(q) > 0) return pollInterval(q, 2000);
      const status = q.state.data?.status;
      if (status && !ACTIVE_STATUSES.includes(status)) return false;
      return options.fast === false ? POLL_MS : 1500;
    },
    refetchIntervalInBackground: false,
    retry: 1,
  });
}

export function useModels() {
  return useQuery({
    queryKey: keys.models,
    queryFn: ({ signal }) => fetchModels(signal),
    staleTime: 5 * 60_000,
  });
}
