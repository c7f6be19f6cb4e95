import type { SpeakerDetection } from "../api/types";

export type RedactionStyle = "redacted" | "entity_type" | "enumerated_entity_type";
export type AudioRedactionMode = "silence" | "beep";

/** The enrichment options of a submission (gateway/enrichment.py); all off by default. */
export interface EnrichmentChoice {
  piiDetection: boolean;
  /** Entity type ids; empty means every type. */
  entityTypes: string[];
  redactText: RedactionStyle | null;
  redactAudio: boolean;
  audioMode: AudioRedactionMode;
  llmCleanup: boolean;
  noVerbatim: boolean;
  summary: boolean;
  /** An emotion label per segment (the emotions stage). */
  detectEmotions: boolean;
  /** Non-speech audio events with their times (the events stage). */
  detectEvents: boolean;
}

export const NO_ENRICHMENT: EnrichmentChoice = {
  piiDetection: false,
  entityTypes: [],
  redactText: null,
  redactAudio: false,
  audioMode: "silence",
  llmCleanup: false,
  noVerbatim: false,
  summary: false,
  detectEmotions: false,
  detectEvents: false,
};

export interface SubmissionOptions {
  model: string;
  language: string;
  speakerDetection: SpeakerDetection;
  numSpeakers: number | null;
  minSpeakers: number | null;
  maxSpeakers: number | null;
  enrichment?: EnrichmentChoice;
}

/** Whether the detect stage runs: asked for directly, or needed by a redaction. */
export function detects(e: EnrichmentChoice): boolean {
  return e.piiDetection || e.redactText !== null || e.redactAudio;
}

/** The enrichment form fields; options that are off are left out (server defaults). */
export function enrichmentFields(e: EnrichmentChoice): [string, string][] {
  const fields: [string, string][] = [];
  if (e.piiDetection) fields.push(["pii_detection", "true"]);
  if (detects(e) && e.entityTypes.length > 0) fields.push(["pii_entity_types", e.entityTypes.join(",")]);
  if (e.redactText) fields.push(["redact_pii_text", e.redactText]);
  if (e.redactAudio) {
    fields.push(["redact_pii_audio", "true"]);
    fields.push(["pii_redaction_mode", e.audioMode]);
  }
  if (e.llmCleanup) fields.push(["llm_cleanup", "true"]);
  if (e.noVerbatim) fields.push(["no_verbatim", "true"]);
  if (e.summary) fields.push(["summary", "true"]);
  if (e.detectEmotions) fields.push(["detect_emotions", "true"]);
  if (e.detectEvents) fields.push(["detect_events", "true"]);
  return fields;
}

/** The multipart body of POST /v1/audio/transcriptions; empty options are left out (server defaults). */
export function buildTranscriptionForm(file: Blob & { name?: string }, options: SubmissionOptions): FormData {
  const form = new FormData();
  // Options first: the gateway reads fields as the upload streams.
  if (options.model) form.append("model", options.model);
  const language = options.language.trim().toLowerCase();
  if (language) form.append("language", language);
  form.append("speaker_detection", options.speakerDetection);
  if (options.speakerDetection === "diarize") {
    if (options.numSpeakers != null) {
      form.append("num_speakers", String(options.numSpeakers));
    } else {
      if (options.minSpeakers != null) form.append("min_speakers", String(options.minSpeakers));
      if (options.maxSpeakers != null) form.append("max_speakers", String(options.maxSpeakers));
    }
  }
  for (const [name, value] of enrichmentFields(options.enrichment ?? NO_ENRICHMENT)) form.append(name, value);
  form.append("file", file, file.name || "upload");
  return form;
}
