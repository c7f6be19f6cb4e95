import { describe, expect, it } from "vitest";

import { emotionColor, emotionScores, emotionText, eventLabel, stageOption } from "./audioAnalysis";

describe("audio analysis labels", () => {
  it("names event types in words", () => {
    expect(eventLabel("phone_ringing")).toBe("Phone ringing");
    expect(eventLabel("throat_clearing")).toBe("Throat clearing");
    expect(eventLabel("laughter")).toBe("Laughter");
  });

  it("shows an emotion with its confidence, every score likeliest first", () => {
    const emotion = { label: "sad", confidence: 0.6049, scores: { neutral: 0.3, sad: 0.6049, angry: 0.0951 } };
    expect(emotionText(emotion)).toBe("sad 60 %");
    expect(emotionScores(emotion)).toBe("emotion: sad 60 % · neutral 30 % · angry 10 %");
    expect(emotionScores({ ...emotion, scores: {} })).toBe("emotion: sad 60 %");
    expect(emotionColor("angry")).toBe("red");
    expect(emotionColor("unknown")).toBe("gray");
  });
});

describe("stageOption", () => {
  const idle = { loading: false, error: null };

  it("offers an option the server can run", () => {
    expect(stageOption({ available: true, reason: null }, idle, "Runs here.")).toEqual({ off: false, text: "Runs here." });
  });

  it("refuses one it cannot, with the server's reason or a plain one", () => {
    expect(stageOption({ available: false, reason: "panns-events is not configured (DALSTON_EVENTS_MODEL)" }, idle, "x")).toEqual({
      off: true,
      text: "Not available on this server: panns-events is not configured (DALSTON_EVENTS_MODEL).",
    });
    expect(stageOption({ available: false, reason: null }, idle, "x").text).toBe("Not available on this server: no model is configured.");
  });

  it("stays off while asking, when asking failed, and when the server does not say", () => {
    expect(stageOption(undefined, { loading: true, error: null }, "x")).toEqual({ off: true, text: "Asking the server whether it has the model…" });
    expect(stageOption(undefined, { loading: false, error: "The gateway is unavailable" }, "x").text).toBe(
      "Could not ask the server whether it has the model: The gateway is unavailable",
    );
    expect(stageOption(undefined, idle, "x")).toEqual({ off: true, text: "Not available on this server." });
  });
});
