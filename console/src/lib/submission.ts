import type { SpeakerDetection } from "../api/types";

export interface SubmissionOptions {
  model: string;
  language: string;
  speakerDetection: SpeakerDetection;
  numSpeakers: number | null;
  minSpeakers: number | null;
  maxSpeakers: number | null;
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
  form.append("file", file, file.name || "upload");
  return form;
}
