"""The one settings object. Every knob is a `DALSTON_*` environment variable."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    # Models. `models` adds or overrides registry entries: {"name": "path-or-hub-id"}.
    default_model: str = "tiny.en"
    models: dict[str, str] = Field(default_factory=dict)
    model_aliases: dict[str, str] = Field(default_factory=dict)
    whisper_device: str = "cpu"
    whisper_compute_type: str = "int8"
    whisper_cpu_threads: int = 0
    whisper_beam_size: int = 5  # faster-whisper's own default; 1 is ~2x faster, less accurate

    # Orchestration and engine reliability
    task_max_retries: int = 2
    # A running task is presumed lost after base + per_audio_second x audio duration.
    task_timeout_base_s: float = 60.0
    task_timeout_per_audio_s: float = 3.0
    reconcile_interval_s: float = 30.0
    engine_claim_idle_ms: int = 60_000
    engine_max_deliveries: int = 3
    engine_block_ms: int = 2_000

    log_level: str = "INFO"
    log_json: bool = False

    @property
    def storage_dir(self) -> Path:
        return self.data_dir / "storage"


@lru_cache
def get_settings() -> Settings:
    return Settings()
