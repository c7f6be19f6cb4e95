// @vitest-environment jsdom
import { MantineProvider } from "@mantine/core";
import { fireEvent, render, screen, within } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";

import type { AudioEvent, Segment, Transcript } from "../../api/types";
import { setUpMantineInJsdom } from "../../test/jsdom";
import { TranscriptView } from "./TranscriptView";

// The waveform decodes audio in the browser; here it only needs to exist.
vi.mock("wavesurfer.js", () => ({ default: { create: () => ({ on: () => {}, destroy: () => {}, setOptions: () => {} }) } }));

setUpMantineInJsdom();

function segment(id: number, start: number, speaker: string, emotion: Segment["emotion"]): Segment {
  return { id, start, end: start + 2, text: ` s${id}`, speaker, words: [{ text: ` s${id}`, start, end: start + 1, probability: 0.9 }], emotion };
}

function transcript(audioEvents: AudioEvent[] | null | undefined, emotions = true): Transcript {
  const segments = [
    segment(0, 0, "Margaret", emotions ? { label: "happy", confidence: 0.873, scores: { happy: 0.873, neutral: 0.1, sad: 0.027 } } : null),
    segment(1, 3, "speaker_1", null),
  ];
  return {
    text: "s0 s1",
    language: "en",
    language_probability: null,
    duration: 6,
    segments,
    words: segments.flatMap((s) => s.words),
    speakers: ["Margaret", "speaker_1"],
    channels: 1,
    model: "tiny.en",
    warnings: [],
    audio_events: audioEvents,
  };
}

function renderView(t: Transcript) {
  return render(
    <MantineProvider>
      <TranscriptView transcript={t} audioSrc="/audio.wav" speakerNames={{ speaker_0: "Margaret" }} onRename={null} noWriteReason="no jobs:write" />
    </MantineProvider>,
  );
}

describe("TranscriptView: emotions and audio events", () => {
  it("shows a segment's emotion as a badge, only where there is one", () => {
    const { container } = renderView(transcript(null));
    const badges = container.querySelectorAll("[data-emotion]");
    expect(badges).toHaveLength(1);
    expect(badges[0]!.getAttribute("data-emotion")).toBe("happy");
    expect(badges[0]!.textContent).toBe("happy 87 %");
    expect(badges[0]!.getAttribute("title")).toBe("emotion: happy 87 % · neutral 10 % · sad 3 %");
    expect(screen.queryByTestId("audio-events")).toBeNull(); // null: events were not asked for
  });

  it("lists audio events in time order with readable types, and a row plays from its event", () => {
    const events: AudioEvent[] = [
      { type: "phone_ringing", start: 4.5, end: 5.25, confidence: 0.64, speaker: null },
      { type: "laughter", start: 1.2, end: 2, confidence: 0.91, speaker: "speaker_0" },
    ];
    renderView(transcript(events, false));
    expect(document.querySelectorAll("[data-emotion]")).toHaveLength(0);
    const panel = screen.getByTestId("audio-events");
    expect(within(panel).getByText("2 found · click one to play it")).toBeTruthy();
    const rows = within(panel).getAllByRole("row").slice(1);
    expect(rows.map((r) => r.getAttribute("data-event-type"))).toEqual(["laughter", "phone_ringing"]);
    const cells = (row: HTMLElement) => within(row).getAllByRole("cell").map((c) => c.textContent);
    expect(cells(rows[0]!)).toEqual(["0:01 – 0:02", "Laughter", "91 %", "Margaret"]); // the id shown under its name
    expect(cells(rows[1]!)).toEqual(["0:04 – 0:05", "Phone ringing", "64 %", "—"]);

    const player = screen.getByTestId("player") as HTMLAudioElement;
    fireEvent.click(within(rows[1]!).getByText("Phone ringing"));
    expect(player.currentTime).toBe(4.5);
    fireEvent.click(within(rows[0]!).getByRole("button", { name: "Play Laughter at 0:01" }));
    expect(player.currentTime).toBe(1.2);
  });

  it("says so when event detection ran and found nothing", () => {
    renderView(transcript([]));
    const panel = screen.getByTestId("audio-events");
    expect(within(panel).getByText("No audio events found")).toBeTruthy();
    expect(within(panel).queryByRole("table")).toBeNull();
  });
});
