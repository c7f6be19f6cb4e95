import { describe, expect, it } from "vitest";

import { activeFilterCount, dateRangeError, filtersFromParams, isDay, jobsQueryString, modelOptions, NO_FILTERS, paramsFromFilters, withFilter } from "./jobFilters";

describe("filtersFromParams", () => {
  it("reads every filter from the page URL", () => {
    const f = filtersFromParams(new URLSearchParams("status=failed&model=whisper-large-v3&speaker_detection=diarize&from=2026-09-01&to=2026-09-30&q=%20call%20"));
    expect(f).toEqual({ status: "failed", model: "whisper-large-v3", speaker_detection: "diarize", from: "2026-09-01", to: "2026-09-30", q: "call" });
  });

  it("drops values the API would refuse, so a hand-edited URL still shows a page", () => {
    const f = filtersFromParams(new URLSearchParams("status=done&speaker_detection=all&from=yesterday&to=2026-02-30&model=&q="));
    expect(f).toEqual(NO_FILTERS);
  });

  it("cuts an over-long search to what the API accepts", () => {
    expect(filtersFromParams(new URLSearchParams(`q=${"x".repeat(300)}`)).q).toHaveLength(200);
  });
});

describe("paramsFromFilters", () => {
  it("round-trips through the URL and leaves out empty filters", () => {
    const f = { ...NO_FILTERS, status: "completed", q: "meeting", to: "2026-09-30" };
    const params = paramsFromFilters(f);
    expect(params.toString()).toBe("status=completed&to=2026-09-30&q=meeting");
    expect(filtersFromParams(params)).toEqual(f);
  });

  it("carries a cursor only when given one", () => {
    expect(paramsFromFilters(NO_FILTERS, "abc").toString()).toBe("cursor=abc");
    expect(paramsFromFilters(NO_FILTERS).toString()).toBe("");
  });
});

describe("withFilter", () => {
  it("sets, trims and clears one filter", () => {
    const f = withFilter(NO_FILTERS, "q", "  board ");
    expect(f.q).toBe("board");
    expect(withFilter(f, "q", "   ").q).toBeNull();
    expect(withFilter(f, "status", null)).toEqual({ ...NO_FILTERS, q: "board" });
  });
});

describe("isDay", () => {
  it("accepts real calendar days only", () => {
    expect(isDay("2026-02-28")).toBe(true);
    expect(isDay("2028-02-29")).toBe(true);
    expect(isDay("2026-02-29")).toBe(false);
    expect(isDay("2026-13-01")).toBe(false);
    expect(isDay("2026-1-01")).toBe(false);
    expect(isDay(null)).toBe(false);
  });
});

describe("jobsQueryString", () => {
  it("has the limit, and the cursor when paging", () => {
    expect(jobsQueryString(NO_FILTERS, null, 25)).toBe("limit=25");
    expect(jobsQueryString(NO_FILTERS, "c1", 25)).toBe("limit=25&cursor=c1");
  });

  it("sends the local days as instants: from's midnight inclusive, the midnight after to exclusive", () => {
    const q = new URLSearchParams(jobsQueryString({ ...NO_FILTERS, from: "2026-09-01", to: "2026-09-30" }, null, 25));
    expect(q.get("created_after")).toBe(new Date(2026, 8, 1).toISOString());
    expect(q.get("created_before")).toBe(new Date(2026, 9, 1).toISOString());
    // An ISO instant with an offset (Z): the API refuses naive times.
    expect(q.get("created_after")).toMatch(/Z$/);
  });

  it("a one-day range covers that whole day, month ends included", () => {
    const q = new URLSearchParams(jobsQueryString({ ...NO_FILTERS, from: "2026-12-31", to: "2026-12-31" }, null, 25));
    expect(q.get("created_after")).toBe(new Date(2026, 11, 31).toISOString());
    expect(q.get("created_before")).toBe(new Date(2027, 0, 1).toISOString());
  });

  it("passes the other filters as the API names them", () => {
    const q = new URLSearchParams(jobsQueryString({ ...NO_FILTERS, status: "running", model: "m1", speaker_detection: "per_channel", q: "50%" }, null, 10));
    expect(Object.fromEntries(q)).toEqual({ limit: "10", status: "running", model: "m1", speaker_detection: "per_channel", q: "50%" });
  });

  it("does not send a reversed date range (the page explains it instead)", () => {
    const f = { ...NO_FILTERS, from: "2026-09-30", to: "2026-09-01" };
    expect(dateRangeError(f)).toMatch(/after the end/);
    expect(jobsQueryString(f, null, 25)).toBe("limit=25");
    expect(dateRangeError({ ...f, to: "2026-09-30" })).toBeNull();
  });
});

describe("activeFilterCount and modelOptions", () => {
  it("counts the filters that are set", () => {
    expect(activeFilterCount(NO_FILTERS)).toBe(0);
    expect(activeFilterCount({ ...NO_FILTERS, q: "x", from: "2026-01-01" })).toBe(2);
  });

  it("offers the server's models plus models in use that it no longer lists", () => {
    expect(modelOptions(["b", "a"], ["c", null, "a"])).toEqual(["a", "b", "c"]);
  });
});
