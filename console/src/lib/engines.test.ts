import { describe, expect, it } from "vitest";

import { engineHealth, filterSettings, formatAge, formatSeconds, heartbeatAge, isFresh, loadPercent, settingText, waitingTasks } from "./engines";

const idle = { current_task_id: null };
const busy = { current_task_id: "t-1" };

describe("engineHealth", () => {
  it("flags queued work with no instance alive", () => {
    expect(engineHealth({ unconfigured: null, instances: [], queue: { lag: 3, pending: 0 } })).toBe("stalled");
    // Held by a dead instance (delivered, never acknowledged): stuck as well.
    expect(engineHealth({ unconfigured: null, instances: [], queue: { lag: 0, pending: 2 } })).toBe("stalled");
    expect(engineHealth({ unconfigured: "no weights", instances: [], queue: { lag: 1, pending: 0 } })).toBe("stalled");
  });

  it("tells busy, idle, stopped and unconfigured apart", () => {
    expect(engineHealth({ unconfigured: null, instances: [idle, busy], queue: { lag: 0, pending: 1 } })).toBe("busy");
    expect(engineHealth({ unconfigured: null, instances: [idle], queue: { lag: 5, pending: 0 } })).toBe("idle");
    expect(engineHealth({ unconfigured: null, instances: [], queue: null })).toBe("stopped");
    expect(engineHealth({ unconfigured: null, instances: [], queue: { lag: null, pending: 0 } })).toBe("stopped");
    expect(engineHealth({ unconfigured: "no weights", instances: [], queue: null })).toBe("unconfigured");
  });

  it("counts what waits", () => {
    expect(waitingTasks({ unconfigured: null, instances: [], queue: { lag: 2, pending: 1 } })).toBe(3);
    expect(waitingTasks({ unconfigured: null, instances: [busy], queue: { lag: 2, pending: 1 } })).toBe(2);
    expect(waitingTasks({ unconfigured: null, instances: [], queue: null })).toBe(0);
  });
});

describe("heartbeats", () => {
  it("ages from the gateway's measurement", () => {
    expect(heartbeatAge(1.5, 10_000, 12_000)).toBe(3.5);
    expect(heartbeatAge(1.5, 10_000, 9_000)).toBe(1.5); // a clock that went back adds nothing
  });

  it("is fresh for two beats", () => {
    expect(isFresh(0.2)).toBe(true);
    expect(isFresh(10)).toBe(true);
    expect(isFresh(10.1)).toBe(false);
    expect(isFresh(null)).toBe(false);
  });

  it("formats ages and durations with units", () => {
    expect(formatAge(0.43)).toBe("0.4 s ago");
    expect(formatAge(42)).toBe("42 s ago");
    expect(formatAge(185)).toBe("3 min 5 s ago");
    expect(formatAge(null)).toBe("—");
    expect(formatSeconds(0.3404)).toBe("340 ms");
    expect(formatSeconds(4.33)).toBe("4.3 s");
    expect(formatSeconds(125)).toBe("2 min 5 s");
    expect(formatSeconds(null)).toBe("—");
  });

  it("computes load", () => {
    expect(loadPercent(1, 4)).toBe(25);
    expect(loadPercent(5, 4)).toBe(100);
    expect(loadPercent(0, 0)).toBe(0);
  });
});

describe("settings", () => {
  const apiKey = { name: "api_key", env: "DALSTON_API_KEY", value: null, secret: true, is_set: true };
  const models = { name: "models", env: "DALSTON_MODELS", value: { big: "/m/big" }, secret: false, is_set: true };
  const groups = [
    {
      name: "Gateway",
      settings: [
        apiKey,
        { name: "port", env: "DALSTON_PORT", value: 8000, secret: false, is_set: true },
      ],
    },
    { name: "Models", settings: [models] },
  ];

  it("shows a secret only as set or not", () => {
    expect(settingText(apiKey)).toBe("•••••• (set, hidden)");
    expect(settingText({ value: null, secret: true, is_set: false })).toBe("not set");
    expect(settingText({ value: false, secret: false, is_set: true })).toBe("false");
    expect(settingText({ value: {}, secret: false, is_set: false })).toBe("{} (none)");
    expect(settingText(models)).toBe('{"big":"/m/big"}');
  });

  it("filters by name, variable and value", () => {
    expect(filterSettings(groups, "").length).toBe(2);
    expect(filterSettings(groups, "PORT").map((g) => g.settings.map((s) => s.name))).toEqual([["port"]]);
    expect(filterSettings(groups, "/m/big").map((g) => g.name)).toEqual(["Models"]);
    expect(filterSettings(groups, "nothing-like-this")).toEqual([]);
  });
});
