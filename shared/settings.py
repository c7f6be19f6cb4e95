"""The one settings object. Every knob is a `DALSTON_*` environment variable."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.catalogue import Stage, check_stage_engines


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DALSTON_", env_file=".env", extra="ignore")

    # Infrastructure. Empty URLs mean "embedded": `dalston up` starts bundled servers.
    database_url: str = ""
    redis_url: str = ""
    data_dir: Path = Path(".dalston")

    # Object storage
    storage_backend: Literal["fs", "s3"] = "fs"
    s3_endpoint_url: str | None = None
    s3_bucket: str = "dalston"
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_multipart_threshold_bytes: int = 16 * 1024 * 1024

    # Gateway
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    max_upload_bytes: int = 2 * 1024**3
    max_audio_seconds: float = 4 * 3600.0
    # Synchronous ElevenLabs requests wait this long for the job, then answer with a clear
    # error that points to webhook mode: below the official SDKs' 240 s client timeout.
    elevenlabs_sync_timeout_s: float = 200.0
    # Downloading `cloud_storage_url`/`source_url` media (the size limit is max_upload_bytes).
    url_fetch_timeout_s: float = 300.0

    # The operators' console: a browser session made from an API key lives this long on
    # the server (Redis), whatever the browser does with its cookie. The built SPA is
    # served from console_dir (default: the checkout's console/dist).
    console_session_ttl_s: int = Field(8 * 3600, ge=1)
    # Console login throttle (gateway/console/login_throttle.py): after this many failed
    # logins from one client address within the window, logins from it answer 429 until
    # the window (which starts at the first failure) ends. 0 turns the throttle off.
    console_login_max_failures: int = Field(10, ge=0)
    console_login_window_s: int = Field(300, ge=1)
    console_dir: Path = Field(default_factory=lambda: Path(__file__).resolve().parents[1] / "console" / "dist")

    # Models. `models` adds or overrides registry entries: {"name": "path-or-hub-id"}.
    default_model: str = "tiny.en"
    models: dict[str, str] = Field(default_factory=dict)
    model_aliases: dict[str, str] = Field(default_factory=dict)
    whisper_device: str = "cpu"
    whisper_compute_type: str = "int8"
    whisper_cpu_threads: int = 0
    whisper_beam_size: int = 5  # faster-whisper's own default; 1 is ~2x faster, less accurate
    # OpenAI `/v1/audio/translations` needs a multilingual model (English-only ones cannot translate).
    translation_model: str = "base"
    # OpenAI requests wait for their job; answer before openai-python's 600 s default timeout.
    openai_wait_timeout_s: float = 570.0

    # Orchestration and engine reliability
    task_max_retries: int = 2
    # A running task is presumed lost after base + per_audio_second x audio duration.
    task_timeout_base_s: float = 60.0
    task_timeout_per_audio_s: float = 3.0
    reconcile_interval_s: float = 30.0
    engine_claim_idle_ms: int = 60_000
    # Every stream consumer (engine, orchestrator) keeps a Redis key with this TTL while its
    # process lives; a consumer whose key has expired is dead and its pending work is claimed.
    consumer_liveness_ttl_s: float = 5.0
    # The orchestrator deletes objects under jobs/{id}/ and sessions/{id}/ that no row owns
    # (a gateway killed while storing, a task that wrote after its job was deleted), once the
    # newest of them is this old, on a pass every storage_sweep_interval_s.
    storage_sweep_interval_s: float = 600.0
    storage_sweep_grace_s: float = 3600.0
    # shared.retention: days a job's audio / a session's recording is kept once it finished
    # (-1 forever, 0 not at all); `retention_overrides` {"<tenant id>": days} per tenant.
    retention_days: int = Field(default=-1, ge=-1, le=36_500)
    retention_overrides: dict[str, Annotated[int, Field(ge=-1, le=36_500)]] = Field(default_factory=dict)
    engine_max_deliveries: int = 3
    engine_block_ms: int = 2_000
    # A task queued this long on a stream no live engine reads fails its job (no silent hang).
    engine_unavailable_after_s: float = 120.0

    # Per-tenant limits (gateway/ratelimit.py); 0 means unlimited. Requests are counted in
    # fixed windows of `rate_limit_window_s`; `rate_limit_overrides` sets a tenant's own:
    # {"<tenant id>": {"requests": 100, "window_s": 60, "jobs": 5, "sessions": 2}}.
    rate_limit_requests: int = 1200
    rate_limit_window_s: int = 60
    rate_limit_concurrent_jobs: int = 100
    rate_limit_concurrent_sessions: int = 20
    rate_limit_overrides: dict[str, dict[str, int]] = Field(default_factory=dict)
    # Sizes of everything but uploads (gateway/limits.py): JSON and other non-multipart
    # bodies, and query strings. Uploads are bounded by max_upload_bytes.
    max_request_body_bytes: int = 1024 * 1024
    max_query_bytes: int = 8 * 1024

    # Webhooks. Private, loopback and link-local targets are refused unless allowed: a
    # webhook URL must not become a way to reach the server's own network.
    allow_private_urls: bool = False
    webhook_timeout_s: float = 10.0
    webhook_max_attempts: int = 8
    # Delay before retry n (the last entry repeats); each is jittered by +-20%.
    webhook_backoff_s: list[float] = Field(default_factory=lambda: [5.0, 30.0, 120.0, 600.0, 3600.0, 3600.0, 3600.0])
    webhook_poll_interval_s: float = 1.0

    # Realtime. Workers heartbeat into Redis every interval; a worker whose heartbeat is
    # older than the TTL drops out of allocation. A reservation is a lease the gateway
    # renews while the session lives, so a crashed gateway's reservations expire by themselves.
    realtime_heartbeat_interval_s: float = 2.0
    realtime_heartbeat_ttl_s: float = 6.0
    realtime_lease_ttl_s: float = 30.0
    realtime_router_interval_s: float = 5.0
    # The most sessions a worker takes. With `realtime_capacity_auto` it advertises fewer once
    # it has measured what its finals cost: as many sessions as keep finals within
    # `realtime_target_load` of its decoder's time (realtime_worker.scheduler.FinalLoad): at half,
    # finals seldom queue behind each other.
    realtime_worker_capacity: int = 4
    realtime_capacity_auto: bool = True
    realtime_target_load: float = Field(0.5, gt=0, le=1)
    realtime_worker_models: list[str] = Field(default_factory=lambda: ["tiny.en"])
    # The URL the gateway dials; default ws://127.0.0.1:<port>.
    realtime_worker_url: str | None = None
    # Realtime variants (`variant=fast|accurate`) name models; Parakeet models need weights:
    # `DALSTON_PARAKEET_MODELS={"parakeet-tdt-0.6b-v2": "/models/parakeet-tdt-0.6b-v2.nemo"}`.
    realtime_variants: dict[str, str] = Field(
        default_factory=lambda: {"fast": "parakeet-tdt-0.6b-v2", "accurate": "parakeet-tdt-1.1b"}
    )
    parakeet_models: dict[str, str] = Field(default_factory=dict)
    realtime_partial_interval_s: float = 0.4
    realtime_final_beam_size: int | None = None  # None: whisper_beam_size
    realtime_idle_timeout_s: float = 60.0  # ElevenLabs drops after ~10 s; silence counts as audio
    # Backpressure: past this backlog of unprocessed audio a session stops reading its client
    # (a `lag` warning says so) until it is down to half; no audio is dropped.
    realtime_lag_hold_s: float = 2.0
    # A session waiting this long on a decoder that makes no progress ends (lag_exceeded).
    realtime_lag_max_s: float = 20.0
    realtime_max_chunk_bytes: int = 1024 * 1024
    realtime_max_utterance_s: float = 90.0
    # Session history and hybrid mode. Unless a client asks for no retention
    # (`retain_audio=false`, ElevenLabs `enable_logging=false`) or this default is off, a
    # session's audio (16 kHz PCM16) and finals are stored as it runs, in chunk objects of
    # this many seconds: a worker that dies loses at most one chunk.
    realtime_retain_audio: bool = True
    realtime_recording_chunk_s: float = 1.0
    # How long the gateway lets a worker finish a session whose client left (to store the
    # last finals and the recording) before it gives up on it.
    realtime_end_timeout_s: float = 30.0

    # Speaker detection. `stage_engines` picks the default engine per stage, e.g.
    # {"diarize": "pyannote-4.0"} or {"transcribe": "whisperx-full"} for the integrated
    # pipeline; a job's own choice wins. Engines other than the default diarizer need
    # weights: pyannote from a local directory or a hub id (+ hf_token), the aligner
    # (wav2vec2 CTC) likewise. Unset means "not available": jobs that need them fail clearly.
    stage_engines: dict[Stage, str] = Field(default_factory=dict)
    pyannote_model: str | None = None
    align_model: str | None = None
    hf_token: str | None = None
    # default diarizer: a fixed cosine distance at which voices merge; unset, the count is estimated
    diarize_threshold: float | None = None
    diarize_cpu_threads: int = 0  # 0: all cores
    # Known speakers (POST /v1/speakers). A found speaker takes an enrolled voice's name when
    # their voiceprints' cosine similarity reaches this (bench/speaker_similarity.py measures it).
    speaker_match_threshold: float = Field(0.89, ge=-1, le=1)
    # Enrolling waits this long for the sample's internal diarize job.
    speaker_enroll_timeout_s: float = Field(120.0, gt=0)
    # A sample must hold at least this much of the enrolled voice's speech.
    speaker_min_speech_s: float = Field(3.0, ge=0)

    # Enrichment. The refine stage (llm-cleanup) talks to any OpenAI-compatible
    # chat-completions server (Ollama, vLLM, llama.cpp's server): unset means "not available".
    llm_base_url: str | None = None  # e.g. http://localhost:11434/v1 (the part before /chat/completions)
    llm_model: str = "default"  # the model name the server knows (Ollama: "qwen2.5:7b-instruct")
    llm_api_key: str | None = None  # sent as a Bearer token when set
    llm_timeout_s: float = 300.0  # one chat-completions request
    llm_max_segment_chars: int = 2000  # segments per request, up to about this much text
    # The detect stage (pii-presidio): regions whose phone numbers count, comma-separated
    # ISO codes ("US,GB"); a number in another format is not found.
    pii_phone_regions: str = "US"
    # The emotions stage (emotion2vec): a local emotion2vec+ model directory in FunASR's layout
    # (config.yaml, model.pt, tokens.txt), e.g. a copy of emotion2vec/emotion2vec_plus_base.
    emotion_model: str | None = None
    # The events stage (panns-events): a local directory holding a PANNs Cnn14_DecisionLevelMax
    # checkpoint (*.pth) and AudioSet's class_labels_indices.csv.
    events_model: str | None = None

    log_level: str = "INFO"
    log_json: bool = False

    # Operations. Engines, the orchestrator and the session router serve Prometheus' /metrics
    # on this port of their own (0: not served); the gateway and realtime workers serve it on
    # their HTTP port. Processes sharing a host need a port each (set it per process).
    metrics_port: int = Field(0, ge=0, le=65535)
    # How often the orchestrator reads the engine streams' length, pending entries and lag.
    metrics_refresh_interval_s: float = Field(5.0, gt=0)
    # On SIGTERM an engine finishes its current task if that takes at most this long, else
    # hands it back to the other instances (within about a second) and exits; below
    # Kubernetes' default 30 s termination grace.
    engine_drain_timeout_s: float = Field(20.0, ge=0)
    # On SIGTERM the gateway stops accepting and lets in-flight requests (uploads) finish
    # for this long; a realtime worker takes no new sessions and lets live ones run this long.
    gateway_drain_timeout_s: float = Field(30.0, ge=0)
    realtime_drain_timeout_s: float = Field(10.0, ge=0)

    @field_validator("stage_engines", mode="before")
    @classmethod
    def _known_stage_engines(cls, value: object) -> object:
        # Refused at startup, with the catalogue's words, rather than failing every job later.
        return check_stage_engines(value) if isinstance(value, dict) else value

    @property
    def storage_dir(self) -> Path:
        return self.data_dir / "storage"


@lru_cache
def get_settings() -> Settings:
    return Settings()
