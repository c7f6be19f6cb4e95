import { ApiError, api, setCsrfToken } from "./client";
import type { JobDetail, JobList, ModelList, Overview, Session } from "./types";

const JOBS = "/v1/audio/transcriptions";

export const paths = {
  session: "/v1/console/session",
  overview: "/v1/console/overview",
  jobs: JOBS,
  job: (id: string) => `${JOBS}/${encodeURIComponent(id)}`,
  cancel: (id: string) => `${JOBS}/${encodeURIComponent(id)}/cancel`,
  audio: (id: string) => `${JOBS}/${encodeURIComponent(id)}/audio`,
  exportFile: (id: string, format: string) => `${JOBS}/${encodeURIComponent(id)}/export/${format}`,
  models: "/v1/models",
};

/** What GET /v1/audio/transcriptions/{id}/export/{format} serves (gateway/exports.py). */
export const EXPORT_FORMATS = ["srt", "vtt", "txt", "json", "docx", "pdf"] as const;

function remember(session: Session): Session {
  setCsrfToken(session.csrf_token ?? null);
  return session;
}

/** The current session, or null when there is none (401). */
export async function fetchSession(): Promise<Session | null> {
  try {
    return remember(await api<Session>(paths.session));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      setCsrfToken(null);
      return null;
    }
    throw err;
  }
}

export async function login(apiKey: string): Promise<Session> {
  return remember(await api<Session>(paths.session, { method: "POST", json: { api_key: apiKey } }));
}

export async function logout(): Promise<void> {
  try {
    await api<void>(paths.session, { method: "DELETE" });
  } finally {
    setCsrfToken(null);
  }
}

/** The dashboard's numbers; `tenantId` narrows an admin key's view to one tenant. */
export function fetchOverview(tenantId: string | null, signal?: AbortSignal): Promise<Overview> {
  const url = tenantId ? `${paths.overview}?tenant_id=${encodeURIComponent(tenantId)}` : paths.overview;
  return api<Overview>(url, { signal });
}

export interface JobsQuery {
  status?: string | null;
  cursor?: string | null;
  limit?: number;
}

export function jobsUrl(query: JobsQuery): string {
  const params = new URLSearchParams();
  params.set("limit", String(query.limit ?? 25));
  if (query.status) params.set("status", query.status);
  if (query.cursor) params.set("cursor", query.cursor);
  return `${JOBS}?${params.toString()}`;
}

export function fetchJobs(query: JobsQuery, signal?: AbortSignal): Promise<JobList> {
  return api<JobList>(jobsUrl(query), { signal });
}

export function fetchJob(id: string, signal?: AbortSignal): Promise<JobDetail> {
  return api<JobDetail>(paths.job(id), { signal });
}

export function cancelJob(id: string): Promise<JobDetail> {
  return api<JobDetail>(paths.cancel(id), { method: "POST" });
}

export function deleteJob(id: string): Promise<void> {
  return api<void>(paths.job(id), { method: "DELETE" });
}

export function fetchModels(signal?: AbortSignal): Promise<ModelList> {
  return api<ModelList>(paths.models, { signal });
}
