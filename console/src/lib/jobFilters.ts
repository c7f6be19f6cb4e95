// Pure logic for the Jobs page's filters: they live in the page's URL (shareable, survive a
// reload) and become GET /v1/audio/transcriptions's query (gateway/job_filters.py).

import { JOB_STATUSES } from "../api/types";

export const SPEAKER_MODES = ["none", "diarize", "per_channel"] as const;

/** The most characters the API accepts in `q` (gateway/job_filters.py MAX_SEARCH_CHARS). */
export const MAX_SEARCH_CHARS = 200;

/** The page's filters. Dates are local calendar days (YYYY-MM-DD), both ends included. */
export interface JobFilters {
  status: string | null;
  model: string | null;
  speaker_detection: string | null;
  from: string | null;
  to: string | null;
  q: string | null;
}

export const NO_FILTERS: JobFilters = { status: null, model: null, speaker_detection: null, from: null, to: null, q: null };

const NAMES = ["status", "model", "speaker_detection", "from", "to", "q"] as const;

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Whether `value` is a real calendar day written YYYY-MM-DD (not 2026-02-30). */
export function isDay(value: string | null | undefined): value is string {
  const m = value ? DAY.exec(value) : null;
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(y, mo - 1, d);
  return date.getFullYear() === y && date.getMonth() === mo - 1 && date.getDate() === d;
}

/** Local midnight at the start of `day` (YYYY-MM-DD) plus `addDays` days. */
function localMidnight(day: string, addDays = 0): Date {
  const [y, m, d] = day.split("-").map(Number) as [number, number, number];
  return new Date(y, m - 1, d + addDays);
}

/** The filters as read from the page's URL; values the API would refuse are left out. */
export function filtersFromParams(params: URLSearchParams): JobFilters {
  const get = (name: string) => params.get(name)?.trim() || null;
  const status = get("status");
  const speakers = get("speaker_detection");
  const from = get("from");
  const to = get("to");
  return {
    status: status && (JOB_STATUSES as readonly string[]).includes(status) ? status : null,
    model: get("model"),
    speaker_detection: speakers && (SPEAKER_MODES as readonly string[]).includes(speakers) ? speakers : null,
    from: isDay(from) ? from : null,
    to: isDay(to) ? to : null,
    q: get("q")?.slice(0, MAX_SEARCH_CHARS) ?? null,
  };
}

/** The page URL's query for `filters` (and a page cursor); empty filters are left out. */
export function paramsFromFilters(filters: JobFilters, cursor: string | null = null): URLSearchParams {
  const params = new URLSearchParams();
  for (const name of NAMES) {
    const value = filters[name]?.trim();
    if (value) params.set(name, value);
  }
  if (cursor) params.set("cursor", cursor);
  return params;
}

/** `filters` with one changed; any change starts again from the first page (the caller drops the cursor). */
export function withFilter(filters: JobFilters, name: keyof JobFilters, value: string | null): JobFilters {
  const trimmed = value?.trim() || null;
  return { ...filters, [name]: trimmed };
}

/** A problem with the date range the user picked, in words; null when there is none. */
export function dateRangeError(filters: JobFilters): string | null {
  if (filters.from && filters.to && filters.from > filters.to) return "The start date is after the end date.";
  return null;
}

/** How many filters are set (for the "Clear filters" button and the empty state). */
export function activeFilterCount(filters: JobFilters): number {
  return NAMES.filter((name) => Boolean(filters[name])).length;
}

/** GET /v1/audio/transcriptions's query string: the days become instants at local midnight
 * (created_after inclusive, created_before the midnight after `to`, exclusive). A reversed
 * range is not sent (the page says why instead). */
export function jobsQueryString(filters: JobFilters, cursor: string | null, limit: number): string {
  const params = new URLSearchParams();
  params.set("limit", String(limit));
  if (filters.status) params.set("status", filters.status);
  if (filters.model) params.set("model", filters.model);
  if (filters.speaker_detection) params.set("speaker_detection", filters.speaker_detection);
  if (!dateRangeError(filters)) {
    if (filters.from) params.set("created_after", localMidnight(filters.from).toISOString());
    if (filters.to) params.set("created_before", localMidnight(filters.to, 1).toISOString());
  }
  if (filters.q) params.set("q", filters.q);
  if (cursor) params.set("cursor", cursor);
  return params.toString();
}

/** The Select options of the model filter: the server's models, plus any value in use that it no
 * longer lists (a job's model may have left the catalogue; the URL may name it). Sorted, unique. */
export function modelOptions(serverModels: readonly string[], inUse: readonly (string | null)[]): string[] {
  const all = new Set(serverModels);
  for (const m of inUse) if (m) all.add(m);
  return [...all].sort((a, b) => a.localeCompare(b));
}
