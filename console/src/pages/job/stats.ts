import type { Segment, Stage } from "../../api/types";

/** How long a task waited on its engine's stream: queued → started, or → now while still waiting. */
export function queueWaitMs(stage: Stage, now: number): number | null {
  if (!stage.queued_at) return null;
  const queued = Date.parse(stage.queued_at);
  const end = stage.started_at ? Date.parse(stage.started_at) : stage.status === "ready" ? now : NaN;
  if (!Number.isFinite(queued) || !Number.isFinite(end)) return null;
  return Math.max(0, end - queued);
}

/**
 * A segment's confidence in [0, 1]: the mean of its words' probabilities, else the decoder's
 * average token log-probability as a probability. Null when the engine reported neither.
 */
export function segmentConfidence(segment: Segment): number | null {
  const probabilities = segment.words.map((w) => w.probability).filter((p): p is number => typeof p === "number" && Number.isFinite(p));
  if (probabilities.length > 0) return probabilities.reduce((a, b) => a + b, 0) / probabilities.length;
  if (typeof segment.avg_logprob === "number" && Number.isFinite(segment.avg_logprob)) return Math.min(1, Math.exp(segment.avg_logprob));
  return null;
}

/** Colour of a confidence: what needs a second look stands out, the rest stays quiet. */
export function confidenceColor(confidence: number): string {
  if (confidence < 0.5) return "red";
  if (confidence < 0.75) return "orange";
  return "dimmed";
}
