// GET /v1/audio/transcriptions with the Jobs page's filters (gateway/job_filters.py), and the
// per-job actions its bulk bar runs. Query keys start with "jobs", so invalidating
// keys.jobsAll (after a submit, cancel or delete anywhere) refreshes these lists too.

import { useQuery } from "@tanstack/react-query";

import { jobsQueryString, type JobFilters } from "../lib/jobFilters";
import { consecutiveFailures, POLL_MS, pollInterval } from "../lib/polling";
import { api } from "./client";
import { paths } from "./endpoints";
import { ACTIVE_STATUSES } from "./types";
import type { JobList } from "./types";

export function fetchJobList(query: string, signal?: AbortSignal): Promise<JobList> {
  return api<JobList>(`${paths.jobs}?${query}`, { signal });
}

export const jobListKeys = {
  list: (query: string) => ["jobs", "list", query] as const,
};

/** One page of the caller's jobs matching `filters`; polls while a listed job is active. */
export function useJobList(filters: JobFilters, cursor: string | null, limit: number) {
  const query = jobsQueryString(filters, cursor, limit);
  return useQuery({
    queryKey: jobListKeys.list(query),
    queryFn: ({ signal }) => fetchJobList(query, signal),
    placeholderData: (previous) => previous,
    refetchInterval: (q) => {
      if (consecutiveFailures(q) > 0) return pollInterval(q);
      const jobs = q.state.data?.jobs ?? [];
      return jobs.some((j) => ACTIVE_STATUSES.includes(j.status)) ? POLL_MS : false;
    },
    refetchIntervalInBackground: false,
    retry: 1,
  });
}
