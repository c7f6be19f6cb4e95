// GET /v1/console/engines, /v1/console/models and /v1/console/settings
// (gateway/console/engines.py, gateway/console/settings.py). Admin scope only.

import { useQuery } from "@tanstack/react-query";

import { pollInterval } from "../lib/polling";
import { api } from "./client";
import type { RealtimeStats } from "./types";

export interface EngineInstance {
  instance_id: string;
  host: string;
  pid: number;
  started_at: string;
  last_heartbeat: string;
  /** Seconds since its latest heartbeat when the gateway answered (Redis' clock). */
  heartbeat_age_seconds: number;
  current_task_id: string | null;
  current_task_started_at: string | null;
  tasks_done: number;
  tasks_failed: number;
}

export interface EngineQueueInfo {
  stream: string;
  length: number;
  pending: number;
  lag: number | null;
}

export interface TaskStats {
  completed: number;
  failed: number;
  mean_run_seconds: number | null;
  p95_run_seconds: number | null;
  mean_queue_wait_seconds: number | null;
}

export interface EngineStatus {
  engine_id: string;
  stage: string;
  summary: string;
  word_timestamps: boolean;
  gpu: boolean;
  extra: string | null;
  selectable: boolean;
  default_for_stage: boolean;
  runs_stages: string[];
  weights_setting: string | null;
  unconfigured: string | null;
  instances: EngineInstance[];
  queue: EngineQueueInfo | null;
  last_24h: TaskStats;
}

export interface EnginesView {
  generated_at: string;
  window_hours: number;
  engines: EngineStatus[];
  realtime: RealtimeStats;
}

export interface WhisperModel {
  id: string;
  english_only: boolean;
  default: boolean;
  aliases: string[];
  source: string;
  source_kind: "bundled" | "bundled-split" | "configured";
  present_on_gateway: boolean | null;
  batch_engines: { engine_id: string; stage: string; word_timestamps: boolean }[];
  realtime_workers: string[];
}

export interface EngineWeights {
  engine_id: string;
  stage: string;
  setting: string;
  value: string | null;
  configured: boolean;
}

export interface RealtimeModel {
  id: string;
  backend: string;
  backend_summary: string;
  variants: string[];
  weights: string | null;
  workers: string[];
}

export interface ModelsView {
  default_model: string;
  translation_model: string;
  whisper: WhisperModel[];
  engine_weights: EngineWeights[];
  realtime: RealtimeModel[];
}

export type SettingValue = string | number | boolean | null | SettingValue[] | { [key: string]: SettingValue };

export interface SettingView {
  name: string;
  env: string;
  value: SettingValue;
  secret: boolean;
  is_set: boolean;
  source: "set" | "default";
}

export interface SettingsGroup {
  name: string;
  settings: SettingView[];
}

export interface SettingsView {
  env_prefix: string;
  groups: SettingsGroup[];
}

export const enginePaths = {
  engines: "/v1/console/engines",
  models: "/v1/console/models",
  settings: "/v1/console/settings",
};

export const engineQueryKeys = {
  engines: ["console", "engines"] as const,
  models: ["console", "models"] as const,
  settings: ["console", "settings"] as const,
};

/** Live: every 5 s while the tab is visible, backing off while the gateway fails. */
export function useEngines(enabled = true) {
  return useQuery({
    queryKey: engineQueryKeys.engines,
    queryFn: ({ signal }) => api<EnginesView>(enginePaths.engines, { signal }),
    placeholderData: (previous) => previous,
    refetchInterval: (q) => pollInterval(q),
    refetchIntervalInBackground: false,
    retry: 1,
    enabled,
  });
}

/** Which workers serve a model changes with the pool: refreshed like the engines, but slower. */
export function useModels(enabled = true) {
  return useQuery({
    queryKey: engineQueryKeys.models,
    queryFn: ({ signal }) => api<ModelsView>(enginePaths.models, { signal }),
    placeholderData: (previous) => previous,
    refetchInterval: (q) => pollInterval(q, 15000),
    refetchIntervalInBackground: false,
    retry: 1,
    enabled,
  });
}

/** Settings change only when the gateway restarts: read once per visit. */
export function useSettings(enabled = true) {
  return useQuery({
    queryKey: engineQueryKeys.settings,
    queryFn: ({ signal }) => api<SettingsView>(enginePaths.settings, { signal }),
    staleTime: 60_000,
    enabled,
  });
}
