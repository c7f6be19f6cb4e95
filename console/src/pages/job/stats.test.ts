import { describe, expect, it } from "vitest";

import type { Segment, Stage } from "../../api/types";
import { confidenceColor, queueWaitMs, segmentConfidence } from "./stats";

const base: Stage = {
  name: "transcribe",
  stage: "transcribe",
  engine_id: "faster-whisper",
  status: "completed",
  attempt: 0,
  queued_at: "2026-01-01T00:00:00.000Z",
  started_at: "2026-01-01T00:00:01.500Z",
  completed_at: "2026-01-01T00:00:03.000Z",
  duration_ms: 1500,
  error: null,
};

function seg(probabilities: (number | null)[], avg_logprob: number | null = null): Segment {
  return { id: 0, start: 0, end: 1, text: "", avg_logprob, words: probabilities.map((p) => ({ text: "a", start: 0, end: 1, probability: p })) };
}

describe("stage and segment stats", () => {
  it("measures the queue wait", () => {
    expect(queueWaitMs(base, 0)).toBe(1500);
    const waiting = { ...base, status: "ready", started_at: null, completed_at: null };
    expect(queueWaitMs(waiting, Date.parse("2026-01-01T00:00:04Z"))).toBe(4000);
    expect(queueWaitMs({ ...base, queued_at: null }, 0)).toBeNull();
    expect(queueWaitMs({ ...waiting, status: "pending" }, 0)).toBeNull();
  });

  it("computes a segment's confidence from words, else the decoder", () => {
    expect(segmentConfidence(seg([0.9, 0.5]))).toBeCloseTo(0.7);
    expect(segmentConfidence(seg([null], Math.log(0.8)))).toBeCloseTo(0.8);
    expect(segmentConfidence(seg([]))).toBeNull();
    expect(confidenceColor(0.3)).toBe("red");
    expect(confidenceColor(0.6)).toBe("orange");
    expect(confidenceColor(0.95)).toBe("dimmed");
  });
});
