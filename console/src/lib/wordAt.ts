// Which word is playing: a binary search over word start times.

export interface Timed {
  start: number;
  end: number;
}

/** Slack for a seek that lands a hair before the start it was asked for. */
export const SEEK_EPSILON = 0.005;

/** Index of the last entry of ascending `starts` that is <= t (+ epsilon), or -1 when t precedes them all. */
export function lastStartAtOrBefore(starts: ArrayLike<number>, t: number, epsilon = SEEK_EPSILON): number {
  let lo = 0;
  let hi = starts.length - 1;
  let found = -1;
  const target = t + epsilon;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if ((starts[mid] as number) <= target) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}

/**
 * The words of a transcript in time order, for looking up the word at a playback time.
 * Words may come in any order (per-channel transcripts interleave); `at` answers with the
 * word's index in the original list.
 */
export class WordTimeline {
  private readonly starts: Float64Array;
  private readonly ends: Float64Array;
  private readonly order: Int32Array;

  constructor(words: readonly Timed[]) {
    const order = words.map((_, i) => i).sort((a, b) => (words[a] as Timed).start - (words[b] as Timed).start || a - b);
    this.order = Int32Array.from(order);
    this.starts = Float64Array.from(order, (i) => (words[i] as Timed).start);
    this.ends = Float64Array.from(order, (i) => (words[i] as Timed).end);
  }

  get length(): number {
    return this.order.length;
  }

  /**
   * The index (in the original list) of the word playing at `t` seconds: the last word that
   * started at or before `t`, while `t` is before its end plus `hold` (a short pause keeps the
   * word lit; a long silence clears it). -1 when no word is playing.
   */
  at(t: number, hold = 0.3): number {
    if (!Number.isFinite(t)) return -1;
    const k = lastStartAtOrBefore(this.starts, t);
    if (k < 0) return -1;
    if (t > (this.ends[k] as number) + hold) return -1;
    return this.order[k] as number;
  }
}

/** Convenience for one lookup over words already sorted by start. */
export function wordAt(words: readonly Timed[], t: number, hold = 0.3): number {
  return new WordTimeline(words).at(t, hold);
}
