import { describe, expect, it } from "vitest";

import type { JobDetail, Segment, Transcript } from "../api/types";
import { cleanName, nameProblem, speakerColors, speakerEntries, speakerIdOf, withSpeakerName } from "./speakers";

function segment(id: number, speaker: string | null, channel: number | null = null): Segment {
  return {
    id,
    start: id,
    end: id + 1,
    text: `s${id}`,
    speaker,
    channel,
    words: [{ text: `w${id}`, start: id, end: id + 0.5, speaker }],
  };
}

function transcript(): Transcript {
  const segments = [segment(0, "speaker_0"), segment(1, "speaker_1"), segment(2, "speaker_0")];
  return {
    text: "",
    language: "en",
    language_probability: null,
    duration: 3,
    segments,
    words: segments.flatMap((s) => s.words),
    speakers: ["speaker_0", "speaker_1"],
    channels: 1,
    model: "tiny.en",
    warnings: [],
  };
}

function job(t: Transcript | null = transcript(), names: Record<string, string> = {}): JobDetail {
  return {
    id: "j",
    status: "completed",
    model: "tiny.en",
    language: null,
    speaker_detection: "diarize",
    audio: { filename: null, bytes: 1, format: null, duration: 3, channels: 1, sample_rate: 16000 },
    error: null,
    warnings: [],
    created_at: "",
    started_at: null,
    completed_at: null,
    progress: 1,
    stages: [],
    transcript: t,
    speaker_names: names,
  };
}

describe("speakers", () => {
  it("renames a speaker everywhere in the transcript and keeps its colour", () => {
    const before = job();
    const after = withSpeakerName(before, "speaker_0", "  Margaret ");
    expect(after.speaker_names).toEqual({ speaker_0: "Margaret" });
    expect(after.transcript?.speakers).toEqual(["Margaret", "speaker_1"]);
    expect(after.transcript?.segments.map((s) => s.speaker)).toEqual(["Margaret", "speaker_1", "Margaret"]);
    expect(after.transcript?.words.map((w) => w.speaker)).toEqual(["Margaret", "speaker_1", "Margaret"]);
    expect(after.transcript?.segments[2]?.words[0]?.speaker).toBe("Margaret");
    expect(speakerColors(after.transcript!).get("Margaret")).toBe(speakerColors(before.transcript!).get("speaker_0"));
    expect(before.transcript?.speakers).toEqual(["speaker_0", "speaker_1"]); // not mutated
  });

  it("renames a named speaker again and resets it to its id", () => {
    const named = withSpeakerName(job(), "speaker_0", "Margaret");
    const again = withSpeakerName(named, "speaker_0", "Maggie");
    expect(again.transcript?.speakers).toEqual(["Maggie", "speaker_1"]);
    const reset = withSpeakerName(again, "speaker_0", null);
    expect(reset.speaker_names).toEqual({});
    expect(reset.transcript?.speakers).toEqual(["speaker_0", "speaker_1"]);
    expect(withSpeakerName(again, "speaker_0", "speaker_0").speaker_names).toEqual({});
  });

  it("maps labels back to the pipeline's ids", () => {
    expect(speakerIdOf("Margaret", { speaker_0: "Margaret" })).toBe("speaker_0");
    expect(speakerIdOf("speaker_1", { speaker_0: "Margaret" })).toBe("speaker_1");
    expect(speakerIdOf("speaker_1", undefined)).toBe("speaker_1");
    const named = withSpeakerName(job(), "speaker_1", "Bob");
    expect(speakerEntries(named.transcript!, named.speaker_names)).toEqual([
      { id: "speaker_0", label: "speaker_0", color: "blue", renamable: true },
      { id: "speaker_1", label: "Bob", color: "teal", renamable: true },
    ]);
  });

  it("does not offer to rename a channel label that is no speaker id", () => {
    const t = { ...transcript(), speakers: [], segments: [segment(0, null, 1)] };
    expect(speakerEntries(t, {})).toEqual([{ id: "channel 1", label: "channel 1", color: "blue", renamable: false }]);
  });

  it("checks a new name like the gateway does", () => {
    const labels = ["Margaret", "speaker_1"];
    expect(nameProblem("   ", "Margaret", labels)).toMatch(/Enter a name/);
    expect(nameProblem("x".repeat(65), "Margaret", labels)).toMatch(/64/);
    expect(nameProblem("speaker_1", "Margaret", labels)).toMatch(/already/);
    expect(nameProblem(" Margaret ", "Margaret", labels)).toBeNull();
    expect(nameProblem("Ann", "Margaret", labels)).toBeNull();
    expect(cleanName(" a \t b\n")).toBe("a b");
  });

  it("renames the speaker of an audio event too", () => {
    const t: Transcript = { ...transcript(), audio_events: [{ type: "laughter", start: 0.2, end: 0.8, confidence: 0.9, speaker: "speaker_0" }] };
    const after = withSpeakerName(job(t), "speaker_0", "Margaret");
    expect(after.transcript?.audio_events?.map((e) => e.speaker)).toEqual(["Margaret"]);
    expect(withSpeakerName(job(), "speaker_0", "Margaret").transcript).not.toHaveProperty("audio_events");
  });

  it("leaves a job without a transcript alone", () => {
    expect(withSpeakerName(job(null), "speaker_0", "A").transcript).toBeNull();
  });
});
