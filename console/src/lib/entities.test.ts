import { describe, expect, it } from "vitest";

import type { Entity } from "../api/enrichment";
import { entityLabel, entityOfWord, entityTypeGroups } from "./entities";
import { buildTranscriptionForm, enrichmentFields, NO_ENRICHMENT } from "./submission";

function entity(first: number, last: number, type = "person_name"): Entity {
  return { type, category: "pii", text: "x", start_char: 0, end_char: 1, start: 0, end: 1, confidence: 1, speaker: null, channel: null, first_word: first, last_word: last };
}

describe("entity labels", () => {
  it("reads like words, acronyms kept", () => {
    expect(entityLabel("person_name")).toBe("Person name");
    expect(entityLabel("ssn")).toBe("SSN");
    expect(entityLabel("ip_address")).toBe("IP address");
    expect(entityLabel("iban")).toBe("IBAN");
  });

  it("groups types by category in the server's order", () => {
    const groups = entityTypeGroups([
      { id: "person_name", category: "pii" },
      { id: "credit_card", category: "pci" },
      { id: "email_address", category: "pii" },
    ]);
    expect(groups.map((g) => g.group)).toEqual(["Personal (PII)", "Payment card (PCI)"]);
    expect(groups[0]?.items.map((i) => i.value)).toEqual(["person_name", "email_address"]);
  });
});

describe("entityOfWord", () => {
  const words = [
    { text: "my", start: 0, end: 0.2 },
    { text: "name", start: 0.3, end: 0.5 },
    { text: "Margaret", start: 0.6, end: 0.9 },
    { text: "Jones.", start: 1.0, end: 1.3 },
    { text: "card", start: 2.0, end: 2.2 },
  ];

  it("marks the displayed words of each entity", () => {
    const map = entityOfWord(words, words, [entity(2, 3), entity(4, 4, "credit_card")]);
    expect([...map]).toEqual([
      [2, 0],
      [3, 0],
      [4, 1],
    ]);
  });

  it("matches by time and text when the displayed order differs", () => {
    const displayed = [words[4]!, words[2]!, words[3]!];
    expect([...entityOfWord(displayed, words, [entity(2, 3)])]).toEqual([
      [1, 0],
      [2, 0],
    ]);
  });

  it("ignores indices past the word list", () => {
    expect(entityOfWord(words, words, [entity(7, 9)]).size).toBe(0);
  });
});

describe("enrichment form fields", () => {
  it("leaves everything out by default", () => {
    expect(enrichmentFields(NO_ENRICHMENT)).toEqual([]);
  });

  it("sends types only when something detects, and the audio mode with audio redaction", () => {
    expect(enrichmentFields({ ...NO_ENRICHMENT, entityTypes: ["person_name"] })).toEqual([]);
    expect(
      enrichmentFields({ ...NO_ENRICHMENT, piiDetection: true, entityTypes: ["person_name", "credit_card"], redactText: "entity_type", redactAudio: true, audioMode: "beep" }),
    ).toEqual([
      ["pii_detection", "true"],
      ["pii_entity_types", "person_name,credit_card"],
      ["redact_pii_text", "entity_type"],
      ["redact_pii_audio", "true"],
      ["pii_redaction_mode", "beep"],
    ]);
    expect(enrichmentFields({ ...NO_ENRICHMENT, llmCleanup: true, summary: true })).toEqual([
      ["llm_cleanup", "true"],
      ["summary", "true"],
    ]);
  });

  it("asks for emotions and audio events only when chosen", () => {
    expect(enrichmentFields({ ...NO_ENRICHMENT, detectEmotions: true })).toEqual([["detect_emotions", "true"]]);
    expect(enrichmentFields({ ...NO_ENRICHMENT, detectEvents: true })).toEqual([["detect_events", "true"]]);
    expect(enrichmentFields({ ...NO_ENRICHMENT, piiDetection: true, summary: true, detectEmotions: true, detectEvents: true })).toEqual([
      ["pii_detection", "true"],
      ["summary", "true"],
      ["detect_emotions", "true"],
      ["detect_events", "true"],
    ]);
  });

  it("puts the options before the file", () => {
    const form = buildTranscriptionForm(new Blob(["x"]), {
      model: "",
      language: "",
      speakerDetection: "none",
      numSpeakers: null,
      minSpeakers: null,
      maxSpeakers: null,
      enrichment: { ...NO_ENRICHMENT, piiDetection: true },
    });
    expect([...form.keys()]).toEqual(["speaker_detection", "pii_detection", "file"]);
  });
});
