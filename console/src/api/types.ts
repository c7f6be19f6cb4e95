// Shapes of the gateway's JSON, as gateway/schemas.py, shared/transcript.py and
// gateway/console*.py define them. Optional fields are ones older gateways may omit.

export type JobStatus = "pending" | "running" | "completed" | "failed" | "cancelled";
export const JOB_STATUSES: readonly JobStatus[] = ["pending", "running", "completed", "failed", "cancelled"];
export const ACTIVE_STATUSES: readonly string[] = ["pending", "running"];

export type SpeakerDetection = "none" | "diarize" | "per_channel";

export interface Session {
  key_id: string;
  key_name: string;
  /** The tenant the session acts for: the key's own, or one an admin switched to. */
  tenant_id: string;
  tenant_name: string;
  key_tenant_id: string;
  scopes: string[];
  expires_at: string | null;
  csrf_token: string;
}

export interface AudioInfo {
  filename: string | null;
  bytes: number;
  format: string | null;
  duration: number;
  channels: number;
  sample_rate: number;
}

export interface Stage {
  name: string;
  stage: string;
  engine_id: string;
  status: string;
  attempt: number;
  queued_at?: string | null;
  started_at: string | null;
  completed_at: string | null;
  duration_ms: number | null;
  error: string | null;
}

export interface Word {
  text: string;
  start: number;
  end: number;
  probability?: number | null;
  speaker?: string | null;
  channel?: number | null;
}

/** A segment's emotion, set by the emotions stage (emotion2vec's classes). */
export interface Emotion {
  /** angry | disgusted | fearful | happy | neutral | other | sad | surprised | unknown */
  label: string;
  confidence: number;
  /** Every class's probability. */
  scores: Record<string, number>;
}

/** A non-speech sound the events stage found (shared/audio_events.py lists the types). */
export interface AudioEvent {
  /** An event type id such as "laughter" or "phone_ringing". */
  type: string;
  start: number;
  end: number;
  confidence: number;
  /** Who was speaking then, when speakers are known. */
  speaker: string | null;
}

export interface Segment {
  id: number;
  start: number;
  end: number;
  text: string;
  words: Word[];
  speaker?: string | null;
  channel?: number | null;
  avg_logprob?: number | null;
  no_speech_prob?: number | null;
  /** Null or absent: emotion detection was not asked for. */
  emotion?: Emotion | null;
}

export interface Transcript {
  text: string;
  language: string;
  language_probability: number | null;
  duration: number;
  segments: Segment[];
  words: Word[];
  speakers: string[];
  channels: number;
  model: string;
  warnings: string[];
  /** Names the refine stage inferred ({speaker id: name}); already applied to segments and words. */
  speaker_names?: Record<string, string>;
  /** Null or absent: event detection was not asked for; empty: none found. */
  audio_events?: AudioEvent[] | null;
}

export interface JobSummary {
  id: string;
  status: string;
  model: string;
  language: string | null;
  speaker_detection: string;
  audio: AudioInfo;
  error: string | null;
  warnings: string[];
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  source_session_id?: string | null;
}

export interface JobDetail extends JobSummary {
  progress: number;
  stages: Stage[];
  transcript: Transcript | null;
  /** Names given to the pipeline's speaker ids (PUT .../speakers); the transcript already shows them. */
  speaker_names?: Record<string, string>;
}

export interface JobList {
  jobs: JobSummary[];
  next_cursor: string | null;
  has_more: boolean;
}

export interface Model {
  id: string;
  object: string;
  created?: number;
  owned_by?: string;
  root?: string;
}

export interface ModelList {
  object: string;
  data: Model[];
}

export interface HourBucket {
  hour: string;
  created: number;
  completed: number;
  failed: number;
  audio_hours_completed?: number;
}

export interface RecentFailure {
  id: string;
  filename: string | null;
  model: string | null;
  error: string | null;
  completed_at: string | null;
}

export interface EngineStats {
  engine_id: string;
  stage?: string;
  stream?: string;
  length: number;
  pending: number;
  lag: number | null;
  /** Engine processes heartbeating now, idle or busy. */
  live_instances: number;
}

export interface RealtimeWorker {
  id: string;
  url?: string;
  status: string;
  capacity: number;
  active_sessions: number;
  models?: string[];
  heartbeat_age_seconds?: number | null;
}

export interface RealtimeStats {
  status: string;
  models?: string[];
  capacity: number;
  active_sessions: number;
  available_slots: number;
  workers: RealtimeWorker[];
}

export interface Overview {
  /** Whose jobs are counted; null: every tenant (admin keys). */
  tenant_id: string | null;
  generated_at?: string;
  jobs_by_status: Partial<Record<JobStatus, number>>;
  last_24h: HourBucket[];
  throughput_audio_hours_per_hour: number | null;
  error_rate: number | null;
  recent_failures: RecentFailure[];
  engines: EngineStats[] | null;
  realtime: RealtimeStats | null;
}

export interface ErrorBody {
  error?: { code?: string; message?: string };
  detail?: unknown;
}
