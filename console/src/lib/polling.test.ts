import { describe, expect, it } from "vitest";

import { backoffInterval, consecutiveFailures, MAX_POLL_MS, POLL_MS, pollInterval } from "./polling";

describe("backoffInterval", () => {
  it("polls steadily while requests succeed", () => {
    expect(backoffInterval(0)).toBe(POLL_MS);
  });

  it("doubles per consecutive failure up to a ceiling", () => {
    expect(backoffInterval(1)).toBe(2 * POLL_MS);
    expect(backoffInterval(2)).toBe(4 * POLL_MS);
    expect(backoffInterval(50)).toBe(MAX_POLL_MS);
  });
});

describe("consecutiveFailures", () => {
  it("counts failures since the last success", () => {
    const query = { state: { errorUpdateCount: 0, errorUpdatedAt: 0, dataUpdatedAt: 100 } };
    expect(consecutiveFailures(query)).toBe(0);
    query.state = { errorUpdateCount: 1, errorUpdatedAt: 200, dataUpdatedAt: 100 };
    expect(consecutiveFailures(query)).toBe(1);
    query.state = { errorUpdateCount: 3, errorUpdatedAt: 400, dataUpdatedAt: 100 };
    expect(consecutiveFailures(query)).toBe(3);
    expect(pollInterval(query)).toBe(8 * POLL_MS);
    query.state = { errorUpdateCount: 3, errorUpdatedAt: 400, dataUpdatedAt: 500 }; // recovered
    expect(consecutiveFailures(query)).toBe(0);
    expect(pollInterval(query)).toBe(POLL_MS);
    query.state = { errorUpdateCount: 4, errorUpdatedAt: 600, dataUpdatedAt: 500 };
    expect(consecutiveFailures(query)).toBe(1);
  });
});
