import type { Segment, Transcript } from "../../api/types";

const PALETTE = ["blue", "teal", "grape", "orange", "cyan", "pink", "lime", "indigo", "violet", "yellow"];

/** A stable colour per speaker, in the order the transcript lists them. */
export function speakerColors(transcript: Transcript): Map<string, string> {
  const names = [...transcript.speakers];
  for (const s of transcript.segments) {
    const label = segmentSpeaker(s);
    if (label && !names.includes(label)) names.push(label);
  }
  return new Map(names.map((name, i) => [name, PALETTE[i % PALETTE.length] as string]));
}

/** Who speaks a segment: its speaker, else its channel. */
export function segmentSpeaker(segment: Segment): string | null {
  if (segment.speaker) return segment.speaker;
  if (segment.channel != null) return `channel ${segment.channel}`;
  return null;
}
