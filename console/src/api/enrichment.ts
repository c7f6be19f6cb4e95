// GET /v1/audio/enrichment (gateway/enrichment.py): what the enrichment options can be on
// this server. Entities as the canonical transcript carries them (shared/transcript.py); a
// segment's emotion and the audio events are in api/types.ts with the rest of the transcript.

import { useQuery } from "@tanstack/react-query";

import { api } from "./client";

export interface EntityTypeInfo {
  id: string;
  category: string;
}

/** Whether a stage that needs configuration (a model, an LLM) can run here, and why not. */
export interface StageAvailability {
  available: boolean;
  reason: string | null;
}

export interface EnrichmentCapabilities {
  entity_types: EntityTypeInfo[];
  categories: string[];
  redaction_styles: string[];
  audio_redaction_modes: string[];
  /** llm_cleanup, no_verbatim, summary. */
  llm_refine: StageAvailability;
  /** detect_emotions. */
  emotions: StageAvailability;
  /** detect_events. */
  events: StageAvailability;
  /** The event type ids detect_events reports ("laughter", "phone_ringing", …). */
  event_types: string[];
}

export interface Entity {
  type: string;
  category: string;
  text: string;
  start_char: number;
  end_char: number;
  start: number;
  end: number;
  confidence: number;
  speaker: string | null;
  channel: number | null;
  first_word: number;
  last_word: number;
}

/** What the job detail adds once an enrichment ran (gateway/schemas.py JobDetail). */
export interface EnrichmentDetail {
  entities?: Entity[] | null;
  summary?: string | null;
  redacted_text?: string | null;
}

export const enrichmentPaths = {
  capabilities: "/v1/audio/enrichment",
  redactedAudio: (id: string) => `/v1/audio/transcriptions/${encodeURIComponent(id)}/audio/redacted`,
};

export function useEnrichment(enabled = true) {
  return useQuery({
    queryKey: ["enrichment-capabilities"],
    queryFn: () => api<EnrichmentCapabilities>(enrichmentPaths.capabilities),
    enabled,
    staleTime: 5 * 60_000,
    retry: false,
  });
}
