// Pure logic for a transcript's speakers on the job page: colours, names, renaming.
//
// The gateway applies a job's speaker names to the transcript it serves (gateway/stored_jobs.py)
// and lists them in `speaker_names` ({pipeline id: name}); the page shows labels as served and
// maps a label back to its id when renaming.

import type { JobDetail, Segment, Transcript, Word } from "../api/types";

/** gateway/job_actions.py: MAX_SPEAKER_NAME_CHARS. */
export const MAX_SPEAKER_NAME_CHARS = 64;

const PALETTE = ["blue", "teal", "grape", "orange", "cyan", "pink", "lime", "indigo", "violet", "yellow"];

/** Who speaks a segment: its speaker, else its channel. */
export function segmentSpeaker(segment: Segment): string | null {
  if (segment.speaker) return segment.speaker;
  if (segment.channel != null) return `channel ${segment.channel}`;
  return null;
}

/** Every label in the transcript, in the order it lists its speakers, then by first appearance. */
export function speakerLabels(transcript: Transcript): string[] {
  const labels = [...transcript.speakers];
  for (const s of transcript.segments) {
    const label = segmentSpeaker(s);
    if (label && !labels.includes(label)) labels.push(label);
  }
  return labels;
}

/** A stable colour per speaker: by position, so a renamed speaker keeps its colour. */
export function speakerColors(transcript: Transcript): Map<string, string> {
  return new Map(speakerLabels(transcript).map((label, i) => [label, PALETTE[i % PALETTE.length] as string]));
}

/** The pipeline's id behind a label as served: the id whose name it is, else the label itself. */
export function speakerIdOf(label: string, names: Record<string, string> | undefined): string {
  for (const [id, name] of Object.entries(names ?? {})) if (name === label) return id;
  return label;
}

export interface SpeakerEntry {
  id: string;
  label: string;
  color: string;
  /** False for the "channel N" labels of segments without a speaker id: nothing to rename. */
  renamable: boolean;
}

export function speakerEntries(transcript: Transcript, names: Record<string, string> | undefined): SpeakerEntry[] {
  const colors = speakerColors(transcript);
  const ids = new Set<string>(transcript.speakers);
  for (const s of transcript.segments) if (s.speaker) ids.add(s.speaker);
  return speakerLabels(transcript).map((label) => ({
    id: speakerIdOf(label, names),
    label,
    color: colors.get(label) ?? "gray",
    renamable: ids.has(label),
  }));
}

/** Why `name` cannot be the new label of `current`, or null when it can. */
export function nameProblem(name: string, current: string, labels: string[]): string | null {
  const cleaned = cleanName(name);
  if (!cleaned) return "Enter a name.";
  if (cleaned.length > MAX_SPEAKER_NAME_CHARS) return `At most ${MAX_SPEAKER_NAME_CHARS} characters.`;
  if (cleaned !== current && labels.includes(cleaned)) return "Another speaker already has this name.";
  return null;
}

/** What the gateway stores: whitespace runs collapsed, ends trimmed. */
export function cleanName(name: string): string {
  return name.split(/\s+/).filter(Boolean).join(" ");
}

function relabel(transcript: Transcript, from: string, to: string): Transcript {
  const word = (w: Word): Word => (w.speaker === from ? { ...w, speaker: to } : w);
  return {
    ...transcript,
    speakers: transcript.speakers.map((s) => (s === from ? to : s)),
    words: transcript.words.map(word),
    segments: transcript.segments.map((s) => ({ ...s, speaker: s.speaker === from ? to : s.speaker, words: s.words.map(word) })),
    ...(transcript.audio_events ? { audio_events: transcript.audio_events.map((e) => (e.speaker === from ? { ...e, speaker: to } : e)) } : {}),
  };
}

/** The job as it reads once speaker `id` is called `name` (null: its id again): the optimistic update. */
export function withSpeakerName(job: JobDetail, id: string, name: string | null): JobDetail {
  const names = { ...(job.speaker_names ?? {}) };
  const from = names[id] ?? id;
  const cleaned = name === null ? "" : cleanName(name);
  if (!cleaned || cleaned === id) delete names[id];
  else names[id] = cleaned;
  const to = names[id] ?? id;
  return { ...job, speaker_names: names, transcript: job.transcript && from !== to ? relabel(job.transcript, from, to) : job.transcript };
}
