import { describe, expect, it } from "vitest";

import { ApiError } from "../api/client";
import { actionLabel, expectedRefusals, pageSelectionState, remainingSelection, runBulk, summarize, summaryLine, toggle, togglePage } from "./bulk";
import type { BulkProgress } from "./bulk";

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe("runBulk", () => {
  it("runs every id once, keeps the order of ids and never throws", async () => {
    const seen: string[] = [];
    const results = await runBulk(["a", "b", "c", "b"], async (id) => {
      seen.push(id);
      if (id === "b") throw new ApiError(409, "job_not_cancellable", "the job is already completed");
    });
    expect(seen.sort()).toEqual(["a", "b", "c"]);
    expect(results).toEqual([
      { id: "a", ok: true },
      { id: "b", ok: false, code: "job_not_cancellable", reason: "the job is already completed" },
      { id: "c", ok: true },
    ]);
  });

  it("keeps at most `concurrency` requests in flight", async () => {
    let inFlight = 0;
    let most = 0;
    const gates = new Map<string, ReturnType<typeof deferred>>();
    const ids = ["1", "2", "3", "4", "5", "6", "7"];
    ids.forEach((id) => gates.set(id, deferred()));
    const run = runBulk(
      ids,
      async (id) => {
        inFlight += 1;
        most = Math.max(most, inFlight);
        await gates.get(id)!.promise;
        inFlight -= 1;
      },
      { concurrency: 3 },
    );
    for (const id of ids) {
      await new Promise((r) => setTimeout(r, 0));
      gates.get(id)!.resolve();
    }
    const results = await run;
    expect(most).toBe(3);
    expect(results.every((r) => r.ok)).toBe(true);
  });

  it("reports progress after each job, failures counted", async () => {
    const progress: BulkProgress[] = [];
    await runBulk(["a", "b", "c"], async (id) => {
      if (id !== "a") throw new Error("boom");
    }, { concurrency: 1, onProgress: (p) => progress.push(p) });
    expect(progress).toEqual([
      { done: 1, total: 3, failed: 0 },
      { done: 2, total: 3, failed: 1 },
      { done: 3, total: 3, failed: 2 },
    ]);
  });

  it("gives a plain reason for errors that are not the gateway's", async () => {
    const [r] = await runBulk(["a"], async () => {
      throw new Error("socket hang up");
    });
    expect(r).toMatchObject({ ok: false, code: "error" });
    expect(r?.reason).toBeTruthy();
  });

  it("stops starting jobs once aborted; those are reported as not done", async () => {
    const controller = new AbortController();
    const results = await runBulk(
      ["a", "b", "c"],
      async (id) => {
        if (id === "a") controller.abort();
      },
      { concurrency: 1, signal: controller.signal },
    );
    expect(results.map((r) => [r.id, r.ok, r.code])).toEqual([
      ["a", true, undefined],
      ["b", false, "aborted"],
      ["c", false, "aborted"],
    ]);
  });

  it("handles an empty selection", async () => {
    expect(await runBulk([], async () => undefined)).toEqual([]);
  });
});

describe("summaries", () => {
  const results = [
    { id: "a", ok: true },
    { id: "b", ok: false, reason: "the job is already completed" },
    { id: "c", ok: false, reason: "the job is already failed" },
    { id: "d", ok: false, reason: "the job is already completed" },
  ];

  it("groups failures by reason, most common first", () => {
    expect(summarize(results)).toEqual({
      succeeded: 1,
      failed: 3,
      reasons: [
        { reason: "the job is already completed", count: 2 },
        { reason: "the job is already failed", count: 1 },
      ],
    });
  });

  it("says how many succeeded and failed in one line", () => {
    expect(summaryLine("cancel", results)).toBe("1 of 4 jobs cancelled; 3 failed.");
    expect(summaryLine("delete", [{ id: "a", ok: true }])).toBe("1 of 1 job deleted.");
  });

  it("keeps only the failed jobs selected", () => {
    expect(remainingSelection(results)).toEqual(["b", "c", "d"]);
  });

  it("labels the action with its count", () => {
    expect(actionLabel("cancel", 1)).toBe("Cancel 1 job");
    expect(actionLabel("delete", 12)).toBe("Delete 12 jobs");
  });
});

describe("selection", () => {
  it("toggles one id without touching the original set", () => {
    const s = new Set(["a"]);
    expect([...toggle(s, "b")].sort()).toEqual(["a", "b"]);
    expect([...toggle(s, "a")]).toEqual([]);
    expect([...s]).toEqual(["a"]);
  });

  it("knows whether the page is fully, partly or not selected", () => {
    expect(pageSelectionState(new Set(), ["a", "b"])).toBe("none");
    expect(pageSelectionState(new Set(["a"]), ["a", "b"])).toBe("some");
    expect(pageSelectionState(new Set(["a", "b", "x"]), ["a", "b"])).toBe("all");
    expect(pageSelectionState(new Set(["x"]), [])).toBe("none");
  });

  it("selects the whole page, or clears it when it is all selected (keeping other pages' ids)", () => {
    expect([...togglePage(new Set(["a", "x"]), ["a", "b"])].sort()).toEqual(["a", "b", "x"]);
    expect([...togglePage(new Set(["a", "b", "x"]), ["a", "b"])]).toEqual(["x"]);
  });
});

describe("expectedRefusals", () => {
  it("counts finished jobs for cancel and active ones for delete", () => {
    const statuses = ["pending", "running", "completed", "failed", "cancelled"];
    expect(expectedRefusals("cancel", statuses)).toBe(2);
    expect(expectedRefusals("delete", statuses)).toBe(2);
    expect(expectedRefusals("delete", ["cancelled", "completed"])).toBe(0);
  });
});
