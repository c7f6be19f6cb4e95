// Polling cadence: a steady interval while requests succeed, doubling after each
// consecutive failure up to a ceiling, so a down gateway is not hammered.

export const POLL_MS = 5000;
export const MAX_POLL_MS = 60000;

export function backoffInterval(failures: number, base = POLL_MS, max = MAX_POLL_MS): number {
  if (!Number.isFinite(failures) || failures <= 0) return base;
  return Math.min(max, base * 2 ** Math.min(failures, 16));
}

interface PolledState {
  state: { errorUpdateCount: number; errorUpdatedAt: number; dataUpdatedAt: number };
}

const baselines = new WeakMap<object, number>();

/**
 * How many refreshes in a row have failed. TanStack Query counts errors in total
 * (errorUpdateCount); this remembers that count at the last success.
 */
export function consecutiveFailures(query: PolledState): number {
  const { errorUpdateCount, errorUpdatedAt, dataUpdatedAt } = query.state;
  if (errorUpdateCount === 0 || dataUpdatedAt >= errorUpdatedAt) {
    baselines.set(query, errorUpdateCount);
    return 0;
  }
  return Math.max(0, errorUpdateCount - (baselines.get(query) ?? 0));
}

/** refetchInterval for polled queries: `base`, doubling per consecutive failed refresh. */
export function pollInterval(query: PolledState, base = POLL_MS): number {
  return backoffInterval(consecutiveFailures(query), base);
}
