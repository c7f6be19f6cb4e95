// Pure logic for bulk actions on jobs: each selected job gets its own request to the existing
// per-job endpoint (POST …/{id}/cancel, DELETE …/{id}), a few at a time, and each outcome is
// kept: some jobs can fail (a finished job cannot be cancelled, a running one cannot be
// deleted) while the rest succeed, and the user sees which and why.

import { ApiError, errorMessage } from "../api/client";

export type BulkAction = "cancel" | "delete";

/** Requests in flight at once: quick for a page of 25, gentle on the gateway and its rate limit. */
export const BULK_CONCURRENCY = 4;

export interface BulkResult {
  id: string;
  ok: boolean;
  /** Why it failed, in the gateway's words (absent when ok). */
  reason?: string;
  /** The gateway's error code (job_not_cancellable, job_not_terminal, not_found, network_error…). */
  code?: string;
}

export interface BulkProgress {
  done: number;
  total: number;
  failed: number;
}

/** Run `action` on every id with at most `concurrency` at once; never throws. Results come back
 * in the order of `ids`. `onProgress` is called after each job; once `signal` aborts, jobs not
 * yet started are reported as not done. */
export async function runBulk(
  ids: readonly string[],
  action: (id: string) => Promise<unknown>,
  options: { concurrency?: number; onProgress?: (p: BulkProgress) => void; signal?: AbortSignal } = {},
): Promise<BulkResult[]> {
  const unique = [...new Set(ids)];
  const results: BulkResult[] = new Array<BulkResult>(unique.length);
  const concurrency = Math.max(1, Math.min(options.concurrency ?? BULK_CONCURRENCY, unique.length || 1));
  let next = 0;
  let done = 0;
  let failed = 0;

  async function worker(): Promise<void> {
    while (next < unique.length) {
      const index = next++;
      const id = unique[index] as string;
      if (options.signal?.aborted) {
        results[index] = { id, ok: false, code: "aborted", reason: "Stopped before this job was reached." };
      } else {
        try {
          await action(id);
          results[index] = { id, ok: true };
        } catch (err) {
          results[index] = { id, ok: false, code: err instanceof ApiError ? err.code : "error", reason: errorMessage(err) };
        }
      }
      done += 1;
      if (!results[index]?.ok) failed += 1;
      options.onProgress?.({ done, total: unique.length, failed });
    }
  }

  await Promise.all(Array.from({ length: concurrency }, worker));
  return results;
}

export interface BulkSummary {
  succeeded: number;
  failed: number;
  /** Failures grouped by reason, most common first: "the job is already completed" × 3. */
  reasons: { reason: string; count: number }[];
}

export function summarize(results: readonly BulkResult[]): BulkSummary {
  const counts = new Map<string, number>();
  let succeeded = 0;
  for (const r of results) {
    if (r.ok) succeeded += 1;
    else counts.set(r.reason ?? "unknown error", (counts.get(r.reason ?? "unknown error") ?? 0) + 1);
  }
  const reasons = [...counts.entries()].map(([reason, count]) => ({ reason, count })).sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason));
  return { succeeded, failed: results.length - succeeded, reasons };
}

/** The ids to keep selected after a run: the failed ones (so the user can look at them or retry);
 * deleted or cancelled jobs leave the selection. */
export function remainingSelection(results: readonly BulkResult[]): string[] {
  return results.filter((r) => !r.ok).map((r) => r.id);
}

const VERBS: Record<BulkAction, { verb: string; past: string }> = {
  cancel: { verb: "Cancel", past: "cancelled" },
  delete: { verb: "Delete", past: "deleted" },
};

/** "Cancel 3 jobs" / "Delete 1 job". */
export function actionLabel(action: BulkAction, count: number): string {
  return `${VERBS[action].verb} ${count} job${count === 1 ? "" : "s"}`;
}

/** One line for the end of a run: "2 of 3 jobs cancelled; 1 failed." */
export function summaryLine(action: BulkAction, results: readonly BulkResult[]): string {
  const s = summarize(results);
  const total = results.length;
  const head = `${s.succeeded} of ${total} job${total === 1 ? "" : "s"} ${VERBS[action].past}`;
  return s.failed ? `${head}; ${s.failed} failed.` : `${head}.`;
}

/** Toggle `id` in a selection. */
export function toggle(selection: ReadonlySet<string>, id: string): Set<string> {
  const next = new Set(selection);
  if (next.has(id)) next.delete(id);
  else next.add(id);
  return next;
}

/** The header checkbox: all of the page's rows selected, some, or none. */
export function pageSelectionState(selection: ReadonlySet<string>, pageIds: readonly string[]): "all" | "some" | "none" {
  const chosen = pageIds.filter((id) => selection.has(id)).length;
  if (chosen === 0) return "none";
  return chosen === pageIds.length ? "all" : "some";
}

/** Select every row of the page, or clear them when they all are. */
export function togglePage(selection: ReadonlySet<string>, pageIds: readonly string[]): Set<string> {
  const next = new Set(selection);
  if (pageSelectionState(selection, pageIds) === "all") pageIds.forEach((id) => next.delete(id));
  else pageIds.forEach((id) => next.add(id));
  return next;
}

/** How many of the jobs (by status) the gateway will refuse: a finished job cannot be cancelled
 * (a cancelled one is a no-op), an active one cannot be deleted. Said before the user confirms. */
export function expectedRefusals(action: BulkAction, statuses: readonly string[]): number {
  const refused = action === "cancel" ? ["completed", "failed"] : ["pending", "running"];
  return statuses.filter((s) => refused.includes(s)).length;
}
