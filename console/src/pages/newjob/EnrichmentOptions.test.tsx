// @vitest-environment jsdom
import { MantineProvider } from "@mantine/core";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { fireEvent, render, screen } from "@testing-library/react";
import { useState } from "react";
import { afterEach, describe, expect, it, vi } from "vitest";

import type { EnrichmentCapabilities } from "../../api/enrichment";
import { buildTranscriptionForm, NO_ENRICHMENT } from "../../lib/submission";
import type { EnrichmentChoice } from "../../lib/submission";
import { setUpMantineInJsdom } from "../../test/jsdom";
import { EnrichmentOptions } from "./EnrichmentOptions";

setUpMantineInJsdom();
afterEach(() => vi.unstubAllGlobals());

const OFF = { available: false, reason: "emotion2vec is not configured (DALSTON_EMOTION_MODEL)" };

function capabilities(over: Partial<EnrichmentCapabilities>): EnrichmentCapabilities {
  return {
    entity_types: [{ id: "person_name", category: "pii" }],
    categories: ["pii"],
    redaction_styles: ["redacted", "entity_type", "enumerated_entity_type"],
    audio_redaction_modes: ["silence", "beep"],
    llm_refine: { available: false, reason: "DALSTON_LLM_BASE_URL is not set" },
    emotions: { available: true, reason: null },
    events: { available: true, reason: null },
    event_types: ["laughter", "applause", "phone_ringing"],
    ...over,
  };
}

/** The options as the new-job page holds them; `seen` gets every choice made. */
function renderOptions(data: EnrichmentCapabilities | null, seen: EnrichmentChoice[] = []) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  if (data) client.setQueryData(["enrichment-capabilities"], data);
  function Page() {
    const [value, setValue] = useState<EnrichmentChoice>(NO_ENRICHMENT);
    return (
      <EnrichmentOptions
        value={value}
        onChange={(next) => {
          seen.push(next);
          setValue(next);
        }}
        disabled={false}
      />
    );
  }
  return render(
    <MantineProvider>
      <QueryClientProvider client={client}>
        <Page />
      </QueryClientProvider>
    </MantineProvider>,
  );
}

/** A switch by its label (Mantine's <label> holds the description too, hence the prefix match). */
function input(label: string): HTMLInputElement {
  return screen.getByRole("switch", { name: (name) => name.startsWith(label) }) as HTMLInputElement;
}

describe("EnrichmentOptions: audio analysis", () => {
  it("disables an option the server cannot run and says why", () => {
    renderOptions(capabilities({ emotions: OFF }));
    expect(input("Emotion per segment").disabled).toBe(true);
    expect(screen.getByTestId("emotions-availability").textContent).toBe("Not available on this server: emotion2vec is not configured (DALSTON_EMOTION_MODEL).");
    expect(input("Audio events (laughter, applause, music …)").disabled).toBe(false);
    expect(screen.getByTestId("events-availability").textContent).toBe("Marks non-speech sounds with their times: laughter, applause, phone ringing.");
  });

  it("sends detect_emotions and detect_events when chosen", () => {
    const seen: EnrichmentChoice[] = [];
    renderOptions(capabilities({}), seen);
    fireEvent.click(input("Emotion per segment"));
    fireEvent.click(input("Audio events (laughter, applause, music …)"));
    expect(input("Emotion per segment").checked).toBe(true);
    const choice = seen.at(-1)!;
    expect(choice).toMatchObject({ detectEmotions: true, detectEvents: true, piiDetection: false });
    const form = buildTranscriptionForm(new Blob(["x"]), {
      model: "",
      language: "",
      speakerDetection: "none",
      numSpeakers: null,
      minSpeakers: null,
      maxSpeakers: null,
      enrichment: choice,
    });
    expect([...form.keys()]).toEqual(["speaker_detection", "detect_emotions", "detect_events", "file"]);
    expect(form.get("detect_emotions")).toBe("true");
    expect(form.get("detect_events")).toBe("true");
  });

  it("keeps both off when the capabilities cannot be read", async () => {
    vi.stubGlobal("fetch", () => Promise.resolve(new Response("", { status: 503 })));
    renderOptions(null);
    const line = await screen.findByText(/^Could not ask the server whether it has the model/, { selector: "[data-testid=emotions-availability]" });
    expect(line.textContent).toContain("unavailable");
    expect(input("Emotion per segment").disabled).toBe(true);
    expect(input("Audio events (laughter, applause, music …)").disabled).toBe(true);
  });
});
