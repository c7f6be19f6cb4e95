import { describe, expect, it } from "vitest";

import { INITIAL, type LiveAction, liveReducer, type LiveState } from "./useLiveSession";

function run(actions: LiveAction[], from: LiveState = INITIAL): LiveState {
  return actions.reduce(liveReducer, from);
}

const begin: LiveAction = { kind: "message", msg: { type: "session.begin", session_id: "s-1", config: { model: "tiny.en", sample_rate: 16000 } } };
const stats = { audio_seconds: 12, session_seconds: 13, finals: 1, partials: 3, errors: 0, max_lag_seconds: 0.2, final_latency_ms_p50: 300, final_latency_ms_max: 400 };

describe("liveReducer", () => {
  it("goes starting -> connecting -> live -> ending -> ended, keeping the session and the finals", () => {
    const s = run([
      { kind: "start" },
      { kind: "capturing", at: 1000, device: "Built-in microphone" },
      begin,
      { kind: "message", msg: { type: "transcript.partial", utterance_id: 0, text: "hello", start: 0.2, end: 0.8 } },
      { kind: "message", msg: { type: "transcript.final", utterance_id: 0, text: "Hello there.", start: 0.2, end: 1.1, language: "en", reason: "end", latency_ms: 250 } },
      { kind: "stopping", at: 5000 },
      { kind: "message", msg: { type: "session.end", session_id: "s-1", stats } },
      { kind: "closed", at: 6000 },
    ]);
    expect(s.phase).toBe("ended");
    expect(s.sessionId).toBe("s-1");
    expect(s.model).toBe("tiny.en");
    expect(s.transcript.finals.map((f) => f.text)).toEqual(["Hello there."]);
    expect(s.transcript.partial).toBeNull();
    expect(s.stats?.audio_seconds).toBe(12);
    expect([s.startedAt, s.stoppedAt]).toEqual([1000, 5000]);
  });

  it("stays failed when the socket closes after a fatal error", () => {
    const s = run([{ kind: "start" }, { kind: "capturing", at: 0, device: "" }, { kind: "fail", error: "no capacity", at: 10 }, { kind: "closed", at: 20 }]);
    expect(s.phase).toBe("failed");
    expect(s.error).toBe("no capacity");
    expect(s.stoppedAt).toBe(10);
  });

  it("starts afresh: the last session's transcript, error and warning are gone", () => {
    const failed = run([begin, { kind: "warning", text: "lag", at: 0 }, { kind: "fail", error: "x", at: 0 }]);
    const s = liveReducer(failed, { kind: "start" });
    expect(s).toEqual({ ...INITIAL, phase: "starting" });
  });

  it("timestamps warnings from Start, capitalised, and lets them be dismissed", () => {
    let s = run([{ kind: "start" }, { kind: "capturing", at: 10_000, device: "" }, { kind: "warning", text: "transcription is 3.1 s behind the audio", at: 15_500 }]);
    expect(s.warning).toEqual({ text: "Transcription is 3.1 s behind the audio", at: 5.5 });
    s = liveReducer(s, { kind: "dismiss" });
    expect(s.warning).toBeNull();
  });

  it("follows the VAD for the speech badge", () => {
    let s = liveReducer(INITIAL, { kind: "message", msg: { type: "vad.speech_start", timestamp: 1 } });
    expect(s.speaking).toBe(true);
    s = liveReducer(s, { kind: "message", msg: { type: "vad.speech_end", timestamp: 2 } });
    expect(s.speaking).toBe(false);
  });

  it("a cancelled start goes back to idle", () => {
    expect(run([{ kind: "start" }, { kind: "cancel", at: 5 }]).phase).toBe("idle");
  });
});
