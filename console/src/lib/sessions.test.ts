import { describe, expect, it } from "vitest";

import { anyActive, formatCount, hasRecording, playerState, protocolLabel, sessionDuration, sessionStatusColor, sessionWordText, loadWhole, SEEKABLE_BLOB_MAX_BYTES } from "./sessions";

describe("playerState", () => {
  it("plays a kept recording", () => {
    expect(playerState({ status: "completed", retain_audio: true, recording_bytes: 3200 })).toEqual({ kind: "player" });
    expect(playerState({ status: "interrupted", retain_audio: true, recording_bytes: 1 })).toEqual({ kind: "player" });
  });
  it("explains a session without retention", () => {
    const s = playerState({ status: "completed", retain_audio: false, recording_bytes: null });
    expect(s.kind).toBe("none");
    expect(s.kind === "none" && s.reason).toMatch(/retain_audio=false/);
  });
  it("explains a running or empty session", () => {
    const running = playerState({ status: "active", retain_audio: true, recording_bytes: null });
    expect(running.kind === "none" && running.reason).toMatch(/still running/);
    const empty = playerState({ status: "failed", retain_audio: true, recording_bytes: 0 });
    expect(empty.kind === "none" && empty.reason).toMatch(/No audio/);
  });
});

describe("formatting", () => {
  it("formats durations", () => {
    expect(sessionDuration({ status: "completed", audio_duration: 11.9 })).toBe("12 s");
    expect(sessionDuration({ status: "active", audio_duration: 4.25 })).toBe("4.3 s so far");
    expect(sessionDuration({ status: "failed", audio_duration: null })).toBe("—");
  });
  it("formats counts", () => {
    expect(formatCount(1, "word")).toBe("1 word");
    expect(formatCount(0, "word")).toBe("0 words");
    expect(formatCount(1234, "word")).toBe("1,234 words");
    expect(formatCount(null, "word")).toBe("—");
  });
  it("knows recordings, activity and protocols", () => {
    expect(hasRecording({ status: "completed", retain_audio: true, recording_bytes: 10 })).toBe(true);
    expect(hasRecording({ status: "completed", retain_audio: true, recording_bytes: 0 })).toBe(false);
    expect(hasRecording({ status: "completed", retain_audio: false, recording_bytes: 10 })).toBe(false);
    expect(anyActive([{ status: "completed" }, { status: "active" }])).toBe(true);
    expect(anyActive([])).toBe(false);
    expect(protocolLabel("native")).toBe("Native");
    expect(protocolLabel("elevenlabs")).toBe("ElevenLabs");
    expect(protocolLabel("other")).toBe("other");
  });
});

describe("sessionStatusColor", () => {
  it("colours each status", () => {
    expect(sessionStatusColor("active")).toBe("blue");
    expect(sessionStatusColor("interrupted")).toBe("orange");
    expect(sessionStatusColor("weird")).toBe("gray");
  });
});

describe("sessionWordText", () => {
  it("reads the protocol's word field, or text", () => {
    expect(sessionWordText({ word: " fox" })).toBe("fox");
    expect(sessionWordText({ text: "dog " })).toBe("dog");
    expect(sessionWordText({})).toBe("");
  });
});

describe("loadWhole", () => {
  it("fetches small recordings whole, streams big ones", () => {
    expect(loadWhole(380_000)).toBe(true);
    expect(loadWhole(SEEKABLE_BLOB_MAX_BYTES + 1)).toBe(false);
    expect(loadWhole(0)).toBe(false);
    expect(loadWhole(null)).toBe(false);
  });
});
