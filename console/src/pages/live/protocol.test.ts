import { describe, expect, it } from "vitest";

import {
  applyTranscript,
  describeClose,
  describeError,
  describeMicrophoneError,
  EMPTY_TRANSCRIPT,
  englishOnly,
  formatOffset,
  languageProblem,
  parseServerMessage,
  type ServerMessage,
  streamUrl,
  transcriptText,
} from "./protocol";

const partial = (id: number, text: string): ServerMessage => ({ type: "transcript.partial", utterance_id: id, text, start: id * 2, end: id * 2 + 1 });
const final = (id: number, text: string): ServerMessage => ({
  type: "transcript.final",
  utterance_id: id,
  text,
  start: id * 2,
  end: id * 2 + 1.5,
  language: "en",
  reason: "vad",
  latency_ms: 120,
});

describe("streamUrl", () => {
  it("is same-origin, carries no credential, and says what the page sends", () => {
    const url = new URL(streamUrl({ protocol: "http:", host: "127.0.0.1:8000" }, { model: "tiny.en", language: "en", sampleRate: 16000 }));
    expect(url.protocol).toBe("ws:");
    expect(url.host).toBe("127.0.0.1:8000");
    expect(url.pathname).toBe("/v1/audio/transcriptions/stream");
    expect(Object.fromEntries(url.searchParams)).toEqual({
      model: "tiny.en",
      language: "en",
      encoding: "pcm_s16le",
      sample_rate: "16000",
      interim_results: "true",
    });
  });

  it("uses wss on https and leaves out what the server should choose", () => {
    const url = new URL(streamUrl({ protocol: "https:", host: "stt.example.org" }, { model: null, language: null, sampleRate: 8000 }));
    expect(url.protocol).toBe("wss:");
    expect(url.searchParams.has("model")).toBe(false);
    expect(url.searchParams.has("language")).toBe(false);
    expect(url.searchParams.get("sample_rate")).toBe("8000");
  });
});

describe("parseServerMessage", () => {
  it("reads the protocol's messages and nothing else", () => {
    expect(parseServerMessage('{"type":"session.begin","session_id":"abc","config":{}}')?.type).toBe("session.begin");
    expect(parseServerMessage('{"type":"transcript.final","utterance_id":0,"text":"hi"}')?.type).toBe("transcript.final");
    expect(parseServerMessage('{"type":"something.new"}')).toBeNull();
    expect(parseServerMessage("not json")).toBeNull();
    expect(parseServerMessage("[1,2]")).toBeNull();
    expect(parseServerMessage("null")).toBeNull();
  });
});

describe("applyTranscript", () => {
  it("shows partials in place and appends finals, which replace their partial", () => {
    let t = applyTranscript(EMPTY_TRANSCRIPT, partial(0, "the quick"));
    t = applyTranscript(t, partial(0, "the quick brown"));
    expect(t.partial?.text).toBe("the quick brown");
    expect(t.finals).toEqual([]);
    t = applyTranscript(t, final(0, " The quick brown fox. "));
    expect(t.partial).toBeNull();
    expect(t.finals).toEqual([{ utteranceId: 0, text: "The quick brown fox.", start: 0, end: 1.5, latencyMs: 120 }]);
    t = applyTranscript(t, partial(1, "jumps"));
    t = applyTranscript(t, final(1, "Jumps over the lazy dog."));
    expect(transcriptText(t)).toBe("The quick brown fox. Jumps over the lazy dog.");
  });

  it("keeps a newer utterance's partial when an older final arrives, and drops stale partials", () => {
    let t = applyTranscript(EMPTY_TRANSCRIPT, partial(3, "next words"));
    t = applyTranscript(t, final(2, "Earlier words."));
    expect(t.partial?.utteranceId).toBe(3);
    t = applyTranscript(t, partial(2, "earlier"));
    expect(t.partial?.utteranceId).toBe(3);
  });

  it("does not list an empty final but clears its partial", () => {
    let t = applyTranscript(EMPTY_TRANSCRIPT, partial(0, "uh"));
    t = applyTranscript(t, final(0, "  "));
    expect(t).toEqual(EMPTY_TRANSCRIPT);
  });

  it("ignores other messages", () => {
    const t = applyTranscript(EMPTY_TRANSCRIPT, { type: "vad.speech_start", timestamp: 1 });
    expect(t).toBe(EMPTY_TRANSCRIPT);
  });
});

describe("messages in plain words", () => {
  it("explains error codes and keeps the server's detail", () => {
    expect(describeError({ code: "no_capacity", message: "all 2 slots busy" })).toMatch(/busy.*\(all 2 slots busy\)/);
    expect(describeError({ code: "brand_new", message: "something odd" })).toBe("something odd");
    expect(describeError({ code: "brand_new", message: "" })).toMatch(/brand_new/);
  });

  it("explains unexpected closes", () => {
    expect(describeClose(1006, "")).toMatch(/lost/);
    expect(describeClose(1013, "no_capacity")).toMatch(/busy.*no_capacity/);
    expect(describeClose(4000, "")).toMatch(/unexpectedly \(close 4000\)/);
  });

  it("explains microphone failures by their DOMException name", () => {
    expect(describeMicrophoneError(new DOMException("Permission denied", "NotAllowedError"))).toMatch(/denied/);
    expect(describeMicrophoneError(new DOMException("Requested device not found", "NotFoundError"))).toMatch(/No microphone/);
    expect(describeMicrophoneError(new DOMException("busy", "NotReadableError"))).toMatch(/another application/);
    expect(describeMicrophoneError(new Error("boom"))).toMatch(/boom/);
  });
});

describe("small helpers", () => {
  it("formats session-relative times", () => {
    expect(formatOffset(0)).toBe("0:00.0");
    expect(formatOffset(7.44)).toBe("0:07.4");
    expect(formatOffset(83.06)).toBe("1:23.1");
    expect(formatOffset(Number.NaN)).toBe("0:00.0");
  });

  it("checks language codes", () => {
    expect(languageProblem("")).toBeNull();
    expect(languageProblem("en")).toBeNull();
    expect(languageProblem("yue")).toBeNull();
    expect(languageProblem("English")).toMatch(/ISO 639-1/);
    expect(languageProblem("EN")).toMatch(/lowercase/);
  });

  it("knows English-only models", () => {
    expect(englishOnly("tiny.en")).toBe(true);
    expect(englishOnly("base")).toBe(false);
    expect(englishOnly(null)).toBe(false);
  });
});
