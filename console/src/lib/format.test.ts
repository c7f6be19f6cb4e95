import { describe, expect, it } from "vitest";

import { formatAgo, formatBytes, formatClock, formatDateTime, formatDuration, formatMs, formatNumber, formatPercent, formatThroughput, humanize, secondsBetween } from "./format";

describe("formatDuration", () => {
  it("formats seconds, minutes and hours", () => {
    expect(formatDuration(0)).toBe("0.0 s");
    expect(formatDuration(7.26)).toBe("7.3 s");
    expect(formatDuration(11.9)).toBe("12 s");
    expect(formatDuration(60)).toBe("1 min");
    expect(formatDuration(252)).toBe("4 min 12 s");
    expect(formatDuration(3600)).toBe("1 h 00 min");
    expect(formatDuration(3725)).toBe("1 h 02 min");
  });

  it("shows a dash for missing or bad values", () => {
    expect(formatDuration(null)).toBe("—");
    expect(formatDuration(undefined)).toBe("—");
    expect(formatDuration(Number.NaN)).toBe("—");
    expect(formatDuration(-1)).toBe("—");
  });
});

describe("formatMs", () => {
  it("uses ms below a second", () => {
    expect(formatMs(0)).toBe("0 ms");
    expect(formatMs(340.4)).toBe("340 ms");
    expect(formatMs(2400)).toBe("2.4 s");
    expect(formatMs(63000)).toBe("1 min 3 s");
    expect(formatMs(null)).toBe("—");
  });
});

describe("formatClock", () => {
  it("formats like a player", () => {
    expect(formatClock(0)).toBe("0:00");
    expect(formatClock(7.9)).toBe("0:07");
    expect(formatClock(723)).toBe("12:03");
    expect(formatClock(3723)).toBe("1:02:03");
    expect(formatClock(null)).toBe("—");
  });
});

describe("formatBytes", () => {
  it("uses binary units", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(1023)).toBe("1023 B");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(381_000)).toBe("372 KiB");
    expect(formatBytes(5 * 1024 * 1024)).toBe("5.0 MiB");
    expect(formatBytes(2 * 1024 ** 3)).toBe("2.0 GiB");
    expect(formatBytes(null)).toBe("—");
  });
});

describe("percent and numbers", () => {
  it("formats fractions", () => {
    expect(formatPercent(0.1234)).toBe("12.3 %");
    expect(formatPercent(0)).toBe("0.0 %");
    expect(formatPercent(1, 0)).toBe("100 %");
    expect(formatPercent(null)).toBe("—");
  });

  it("formats throughput in a readable unit", () => {
    expect(formatThroughput(0)).toBe("0 s/h");
    expect(formatThroughput(24 / 3600 / 24)).toBe("1 s/h");
    expect(formatThroughput(0.05)).toBe("3 min/h");
    expect(formatThroughput(1.25)).toBe("1.25 h/h");
    expect(formatThroughput(null)).toBe("—");
  });

  it("drops trailing zeros", () => {
    expect(formatNumber(1.5)).toBe("1.5");
    expect(formatNumber(2)).toBe("2");
    expect(formatNumber(0.12345, 3)).toBe("0.123");
    expect(formatNumber(null)).toBe("—");
  });
});

describe("times", () => {
  it("formats a timestamp in local time", () => {
    const iso = new Date(2025, 2, 4, 13, 5, 9).toISOString();
    expect(formatDateTime(iso)).toBe("2025-03-04 13:05:09");
    expect(formatDateTime(null)).toBe("—");
    expect(formatDateTime("not a date")).toBe("—");
  });

  it("says how long ago", () => {
    const now = Date.parse("2025-01-01T12:00:00Z");
    expect(formatAgo("2025-01-01T12:00:00Z", now)).toBe("just now");
    expect(formatAgo("2025-01-01T11:59:18Z", now)).toBe("42 s ago");
    expect(formatAgo("2025-01-01T11:55:00Z", now)).toBe("5 min ago");
    expect(formatAgo("2025-01-01T09:00:00Z", now)).toBe("3 h ago");
    expect(formatAgo("2024-12-30T12:00:00Z", now)).toBe("2 d ago");
  });

  it("measures between two timestamps", () => {
    expect(secondsBetween("2025-01-01T12:00:00Z", "2025-01-01T12:00:02.5Z")).toBe(2.5);
    expect(secondsBetween(null, "2025-01-01T12:00:00Z")).toBeNull();
  });

  it("humanizes enum values", () => {
    expect(humanize("per_channel")).toBe("per channel");
    expect(humanize(null)).toBe("—");
  });
});
