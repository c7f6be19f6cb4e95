import { describe, expect, it } from "vitest";

import { lastStartAtOrBefore, WordTimeline, wordAt } from "./wordAt";
import { separators } from "./words";

const words = [
  { start: 0.0, end: 0.4 },
  { start: 0.5, end: 0.9 },
  { start: 1.0, end: 1.2 },
  { start: 3.0, end: 3.5 }, // after a long pause
];

describe("lastStartAtOrBefore", () => {
  it("finds the last start at or before t", () => {
    const starts = [0, 0.5, 1, 3];
    expect(lastStartAtOrBefore(starts, -1)).toBe(-1);
    expect(lastStartAtOrBefore(starts, 0)).toBe(0);
    expect(lastStartAtOrBefore(starts, 0.49)).toBe(0);
    expect(lastStartAtOrBefore(starts, 0.5)).toBe(1);
    expect(lastStartAtOrBefore(starts, 2.9)).toBe(2);
    expect(lastStartAtOrBefore(starts, 100)).toBe(3);
  });

  it("is empty-safe", () => {
    expect(lastStartAtOrBefore([], 1)).toBe(-1);
  });

  it("tolerates a seek that lands a hair before the start", () => {
    expect(lastStartAtOrBefore([0, 1.23], 1.2299)).toBe(1);
  });
});

describe("WordTimeline.at", () => {
  const timeline = new WordTimeline(words);

  it("answers the word playing at t", () => {
    expect(timeline.at(0.1)).toBe(0);
    expect(timeline.at(0.5)).toBe(1);
    expect(timeline.at(1.1)).toBe(2);
    expect(timeline.at(3.2)).toBe(3);
  });

  it("keeps a word lit through a short pause, not a long one", () => {
    expect(timeline.at(0.45)).toBe(0); // 50 ms gap
    expect(timeline.at(1.4)).toBe(2); // within the hold
    expect(timeline.at(2.0)).toBe(-1); // long silence
    expect(timeline.at(4.0)).toBe(-1); // after the last word
  });

  it("is -1 before the first word and for non-numbers", () => {
    expect(new WordTimeline([{ start: 1, end: 2 }]).at(0.5)).toBe(-1);
    expect(timeline.at(Number.NaN)).toBe(-1);
    expect(new WordTimeline([]).at(1)).toBe(-1);
  });

  it("answers indexes into the original order when words are not sorted", () => {
    // per-channel transcripts interleave channels
    const mixed = [
      { start: 2.0, end: 2.5 },
      { start: 0.0, end: 0.5 },
      { start: 1.0, end: 1.5 },
    ];
    const t = new WordTimeline(mixed);
    expect(t.at(0.2)).toBe(1);
    expect(t.at(1.2)).toBe(2);
    expect(t.at(2.2)).toBe(0);
  });

  it("agrees with a linear scan on a long transcript", () => {
    const many = Array.from({ length: 5000 }, (_, i) => ({ start: i * 0.31, end: i * 0.31 + 0.25 }));
    const t = new WordTimeline(many);
    for (const time of [0, 0.3, 17.05, 777.7, 1549.6]) {
      let expected = -1;
      many.forEach((w, i) => {
        if (w.start <= time + 0.005 && time <= w.end + 0.3) expected = i;
      });
      expect(t.at(time)).toBe(expected);
    }
  });

  it("wordAt is the one-shot form", () => {
    expect(wordAt(words, 0.6)).toBe(1);
  });
});

describe("separators", () => {
  const join = (text: string, words: { text: string }[]) => {
    const gaps = separators(text, words);
    return words.map((w, i) => gaps[i] + w.text.trim()).join("");
  };

  it("reads the spacing from the segment text", () => {
    const words = ["Dalston", "is", "a", "speech", "-to", "-text", "server."].map((text) => ({ text }));
    expect(join(" Dalston is a speech-to-text server.", words)).toBe("Dalston is a speech-to-text server.");
  });

  it("spaces words the text does not contain where expected", () => {
    expect(join("hello world", [{ text: "hello" }, { text: "there" }, { text: "world" }])).toBe("hello there world");
    expect(join("", [{ text: "a" }, { text: "b" }])).toBe("a b");
  });

  it("keeps Whisper-style leading spaces", () => {
    expect(join(" one two", [{ text: " one" }, { text: " two" }])).toBe("one two");
  });
});
