// Formatting of numbers the API returns. Nothing here invents a value: null in, "—" out.

export const DASH = "—";

function pad(n: number, width = 2): string {
  return String(n).padStart(width, "0");
}

/** An audio length for tables: "11.9 s", "4 min 12 s", "1 h 02 min". */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds == null || !Number.isFinite(seconds) || seconds < 0) return DASH;
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const total = Math.round(seconds);
  if (total < 3600) {
    const m = Math.floor(total / 60);
    const s = total % 60;
    return s === 0 ? `${m} min` : `${m} min ${s} s`;
  }
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  return `${h} h ${pad(m)} min`;
}

/** A run time given in milliseconds: "340 ms", "2.4 s", "1 min 3 s". */
export function formatMs(ms: number | null | undefined): string {
  if (ms == null || !Number.isFinite(ms) || ms < 0) return DASH;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return formatDuration(ms / 1000);
}

/** A position in the audio, like a player shows it: "0:07", "12:03", "1:02:03". */
export function formatClock(seconds: number | null | undefined): string {
  if (seconds == null || !Number.isFinite(seconds) || seconds < 0) return DASH;
  const total = Math.floor(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return h > 0 ? `${h}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
}

const UNITS = ["KiB", "MiB", "GiB", "TiB"];

/** A byte count: "512 B", "1.5 KiB", "23.4 MiB". */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes == null || !Number.isFinite(bytes) || bytes < 0) return DASH;
  if (bytes < 1024) return `${Math.round(bytes)} B`;
  let value = bytes;
  let unit = "B";
  for (const next of UNITS) {
    if (value < 1024) break;
    value /= 1024;
    unit = next;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${unit}`;
}

/** A fraction as a percentage: 0.1234 → "12.3 %". */
export function formatPercent(fraction: number | null | undefined, digits = 1): string {
  if (fraction == null || !Number.isFinite(fraction)) return DASH;
  return `${(fraction * 100).toFixed(digits)} %`;
}

/** A plain number with at most `digits` decimals (trailing zeros dropped). */
export function formatNumber(value: number | null | undefined, digits = 2): string {
  if (value == null || !Number.isFinite(value)) return DASH;
  return String(Number(value.toFixed(digits)));
}

/** Audio transcribed per wall-clock hour, given in hours per hour: "24 s/h", "3.5 min/h", "1.25 h/h". */
export function formatThroughput(hoursPerHour: number | null | undefined): string {
  if (hoursPerHour == null || !Number.isFinite(hoursPerHour) || hoursPerHour < 0) return DASH;
  const seconds = hoursPerHour * 3600;
  if (seconds < 60) return `${formatNumber(seconds, 1)} s/h`;
  if (seconds < 3600) return `${formatNumber(seconds / 60, 1)} min/h`;
  return `${formatNumber(hoursPerHour, 2)} h/h`;
}

function parse(iso: string | null | undefined): Date | null {
  if (!iso) return null;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** A timestamp in local time: "2025-03-04 13:05:09". */
export function formatDateTime(iso: string | null | undefined): string {
  const d = parse(iso);
  if (!d) return DASH;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** The local hour of a bucket: "13:00". */
export function formatHour(iso: string | null | undefined): string {
  const d = parse(iso);
  return d ? `${pad(d.getHours())}:00` : DASH;
}

/** How long ago, coarse: "just now", "42 s ago", "5 min ago", "3 h ago", "2 d ago". */
export function formatAgo(iso: string | null | undefined, now: number = Date.now()): string {
  const d = parse(iso);
  if (!d) return DASH;
  const seconds = Math.round((now - d.getTime()) / 1000);
  if (seconds < 5) return "just now";
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

/** Time between two timestamps in seconds, or null when either is missing. */
export function secondsBetween(from: string | null | undefined, to: string | null | undefined): number | null {
  const a = parse(from);
  const b = parse(to);
  if (!a || !b) return null;
  return Math.max(0, (b.getTime() - a.getTime()) / 1000);
}

/** "per_channel" → "per channel". */
export function humanize(value: string | null | undefined): string {
  return value ? value.replace(/_/g, " ") : DASH;
}
