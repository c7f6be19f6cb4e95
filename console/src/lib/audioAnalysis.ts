// Emotions and audio events (the emotions and events stages): how the console names and
// colours them, and how it tells whether the server can run them.

import type { StageAvailability } from "../api/enrichment";
import type { Emotion } from "../api/types";
import { formatPercent } from "./format";

/** "phone_ringing" -> "Phone ringing". */
export function eventLabel(type: string): string {
  const text = type.replace(/_/g, " ").trim();
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// emotion2vec's classes; the ones without a clear feeling stay grey.
const EMOTION_COLORS: Record<string, string> = {
  angry: "red",
  disgusted: "lime",
  fearful: "violet",
  happy: "green",
  sad: "blue",
  surprised: "orange",
};

export function emotionColor(label: string): string {
  return EMOTION_COLORS[label] ?? "gray";
}

/** The badge text: "happy 87 %". */
export function emotionText(emotion: Emotion): string {
  return `${emotion.label} ${formatPercent(emotion.confidence, 0)}`;
}

/** Every class's probability, likeliest first, for a tooltip: "happy 87 % · neutral 9 % · …". */
export function emotionScores(emotion: Emotion): string {
  const scores = Object.entries(emotion.scores ?? {}).sort((a, b) => b[1] - a[1]);
  if (scores.length === 0) return `emotion: ${emotionText(emotion)}`;
  return `emotion: ${scores.map(([label, p]) => `${label} ${formatPercent(p, 0)}`).join(" · ")}`;
}

/** Whether an option whose stage needs a model may be chosen, and the line that says so. */
export function stageOption(
  availability: StageAvailability | undefined,
  state: { loading: boolean; error: string | null },
  availableText: string,
): { off: boolean; text: string } {
  if (state.error !== null) return { off: true, text: `Could not ask the server whether it has the model: ${state.error}` };
  if (!availability) return { off: true, text: state.loading ? "Asking the server whether it has the model…" : "Not available on this server." };
  if (!availability.available) return { off: true, text: `Not available on this server: ${availability.reason ?? "no model is configured"}.` };
  return { off: false, text: availableText };
}
