"""`GET /v1/console/engines` and `GET /v1/console/models`: what runs, and what it can serve (admin).

Every figure is measured, never assumed: live instances are the engines' own heartbeats
(shared/engine_heartbeat.py), queues are Redis' stream and consumer-group counters, task
statistics are SQL aggregates over the `tasks` table, and the realtime pool is the worker
registry. Model facts come from the model registry, the catalogue and the settings.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth import ADMIN_SCOPE, Principal, require_scope
from gateway.console.settings import mask_url
from gateway.realtime.proxy import registry
from gateway.schemas import ErrorResponse
from gateway.services import Services, ServicesDep
from shared import catalogue, engine_heartbeat, keys, model_registry, streams
from shared.db import Job, Task, TaskStatus

router = APIRouter(prefix="/v1/console", tags=["console"], responses={s: {"model": ErrorResponse} for s in (401, 403)})
Admin = Annotated[Principal, Depends(require_scope(ADMIN_SCOPE))]

STATS_HOURS = 24
# Tasks are bounded through their job's created_at (indexed; tasks have no time index): a
# task that finishes more than this long after its job was submitted is left out.
LONGEST_JOB = timedelta(days=2)


# -- shared with the overview ----------------------------------------------------------------


class EngineInstance(BaseModel):
    instance_id: str = Field(description="the consumer name the process reads its stream with")
    host: str
    pid: int
    started_at: datetime = Field(description="when the process started (its own clock)")
    last_heartbeat: datetime = Field(description="its latest heartbeat (its own clock)")
    heartbeat_age_seconds: float = Field(description="seconds since the latest heartbeat, by Redis' clock")
    current_task_id: str | None = Field(description="the task it is running; null when idle")
    current_task_started_at: datetime | None
    tasks_done: int = Field(description="tasks it completed since it started")
    tasks_failed: int = Field(description="tasks it reported failed since it started")


class QueueInfo(BaseModel):
    stream: str
    length: int = Field(description="entries in the stream (acknowledged ones stay until trimmed)")
    pending: int = Field(description="delivered to an engine, not acknowledged yet (being worked on, or held by a dead engine)")
    lag: int | None = Field(description="entries not yet delivered to any engine; null when Redis cannot tell")


def _when(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


async def live_instances(services: Services, engine_id: str) -> list[EngineInstance]:
    return [
        EngineInstance(
            instance_id=i.instance_id,
            host=i.host,
            pid=i.pid,
            started_at=datetime.fromtimestamp(i.started_at, UTC),
            last_heartbeat=datetime.fromtimestamp(i.last_heartbeat, UTC),
            heartbeat_age_seconds=i.heartbeat_age_s,
            current_task_id=i.current_task_id,
            current_task_started_at=_when(i.current_task_started_at),
            tasks_done=i.tasks_done,
            tasks_failed=i.tasks_failed,
        )
        for i in await engine_heartbeat.instances(services.redis, engine_id)
    ]


async def queue_of(services: Services, engine_id: str) -> QueueInfo | None:
    """The engine's stream and its consumer group's backlog; None when the stream does not exist."""
    stream = keys.engine_stream(engine_id)
    info = await streams.group_info(services.redis, stream, keys.ENGINE_GROUP)
    if info is None:
        return None
    return QueueInfo(stream=stream, length=info.length, pending=info.pending, lag=info.lag)


class RealtimeWorker(BaseModel):
    id: str
    url: str
    status: str
    capacity: int
    active_sessions: int
    models: list[str]
    heartbeat_age_seconds: float | None


class RealtimePool(BaseModel):
    status: Literal["available", "full", "unavailable"]
    capacity: int
    active_sessions: int
    available_slots: int
    models: list[str]
    workers: list[RealtimeWorker]


async def realtime_pool(services: Services) -> RealtimePool:
    return RealtimePool.model_validate(await registry(services).status())


# -- engines --------------------------------------------------------------------------------


class TaskStats(BaseModel):
    completed: int = Field(description="tasks that completed in the window")
    failed: int = Field(
        description="tasks that failed in the window (each failed attempt of a retried task counts once, at its last state)"
    )
    mean_run_seconds: float | None = Field(description="completed tasks: mean of started_at → completed_at; null without any")
    p95_run_seconds: float | None = Field(description="completed tasks: 95th percentile run time")
    mean_queue_wait_seconds: float | None = Field(description="finished tasks: mean of queued_at → started_at")


class EngineStatus(BaseModel):
    engine_id: str
    stage: str
    summary: str
    word_timestamps: bool
    gpu: bool = Field(description="can run on a GPU when its device setting says so")
    extra: str | None = Field(description="the install extra (and image) it needs beyond the core")
    selectable: bool = Field(description="a request may choose it")
    default_for_stage: bool = Field(description="the engine its stage runs unless a job chooses another")
    runs_stages: list[str] = Field(description="an integrated engine: the stages it runs in one task")
    weights_setting: str | None = Field(description="the DALSTON_* variable that must name its weights")
    unconfigured: str | None = Field(description="why it cannot run with the gateway's settings; null when it can")
    instances: list[EngineInstance] = Field(description="processes heartbeating now, oldest first")
    queue: QueueInfo | None = Field(description="its stream; null when it was never used here")
    last_24h: TaskStats


class EnginesView(BaseModel):
    generated_at: datetime
    window_hours: int = STATS_HOURS
    engines: list[EngineStatus] = Field(description="every engine in the stage catalogue, in pipeline order")
    realtime: RealtimePool


async def _task_stats(db: AsyncSession, since: datetime) -> dict[str, TaskStats]:
    run = func.extract("epoch", Task.completed_at - Task.started_at)
    completed = Task.status == TaskStatus.completed.value
    # NULLs are skipped by avg and percentile_cont: a CASE keeps only completed tasks' run times.
    completed_run = case((completed, run))
    wait = func.extract("epoch", Task.started_at - Task.queued_at)
    query = (
        select(
            Task.engine_id,
            func.count().filter(completed),
            func.count().filter(Task.status == TaskStatus.failed.value),
            func.avg(completed_run),
            func.percentile_cont(0.95).within_group(completed_run),
            func.avg(wait),
        )
        .join(Job, Job.id == Task.job_id)
        .where(Job.created_at >= since - LONGEST_JOB, Task.completed_at >= since)
        .where(Task.status.in_([TaskStatus.completed.value, TaskStatus.failed.value]))
        .group_by(Task.engine_id)
    )

    def seconds(value: float | None) -> float | None:  # numeric (Decimal) or double precision
        return None if value is None else round(float(value), 3)

    return {
        engine_id: TaskStats(
            completed=done,
            failed=failed,
            mean_run_seconds=seconds(mean),
            p95_run_seconds=seconds(p95),
            mean_queue_wait_seconds=seconds(mean_wait),
        )
        for engine_id, done, failed, mean, p95, mean_wait in await db.execute(query)
    }


@router.get("/engines", response_model=EnginesView)
async def engines(principal: Admin, services: ServicesDep) -> EnginesView:
    """Every engine of the catalogue: live instances (heartbeats), queue, task statistics of
    the last 24 h; and the realtime worker pool."""
    now = datetime.now(UTC)
    async with services.sessionmaker() as db:
        stats = await _task_stats(db, now - timedelta(hours=STATS_HOURS))
    settings = services.settings
    defaults = {**catalogue.DEFAULT_ENGINES, **settings.stage_engines}
    order = list(catalogue.Stage)
    rows = []
    for info in sorted(catalogue.ENGINES.values(), key=lambda e: order.index(e.stage)):
        rows.append(
            EngineStatus(
                engine_id=info.id,
                stage=info.stage,
                summary=info.summary,
                word_timestamps=info.word_timestamps,
                gpu=info.gpu,
                extra=info.extra,
                selectable=info.selectable,
                default_for_stage=defaults.get(info.stage) == info.id,
                runs_stages=[str(s) for s in info.runs_stages],
                weights_setting=f"DALSTON_{info.weights_setting.upper()}" if info.weights_setting else None,
                unconfigured=info.unconfigured(settings),
                instances=await live_instances(services, info.id),
                queue=await queue_of(services, info.id),
                last_24h=stats.get(
                    info.id,
                    TaskStats(completed=0, failed=0, mean_run_seconds=None, p95_run_seconds=None, mean_queue_wait_seconds=None),
                ),
            )
        )
    return EnginesView(generated_at=now, engines=rows, realtime=await realtime_pool(services))


# -- models ---------------------------------------------------------------------------------


class ServingEngine(BaseModel):
    engine_id: str
    stage: str
    word_timestamps: bool


class WhisperModel(BaseModel):
    id: str
    english_only: bool = Field(description="English-only weights (`.en`); otherwise multilingual Whisper")
    default: bool = Field(description="DALSTON_DEFAULT_MODEL: what a request without a model gets")
    aliases: list[str] = Field(description="compatibility names (whisper-1, scribe_v1, …) that resolve to it")
    source: str = Field(description="local directory or hub id of its CTranslate2 weights")
    source_kind: Literal["bundled", "bundled-split", "configured"] = Field(
        description="bundled with the install; bundled in parts, joined on first load; or DALSTON_MODELS"
    )
    present_on_gateway: bool | None = Field(
        description="the weights directory exists on the gateway's host; null for hub ids (downloaded on first load)"
    )
    batch_engines: list[ServingEngine] = Field(description="batch engines that load registry models")
    realtime_workers: list[str] = Field(description="realtime workers heartbeating now that serve it")


class EngineWeights(BaseModel):
    engine_id: str
    stage: str
    setting: str = Field(description="the DALSTON_* variable that names the weights")
    value: str | None = Field(description="what it names (a local directory or hub id); null when unset")
    configured: bool


class RealtimeModel(BaseModel):
    id: str
    backend: str
    backend_summary: str
    variants: list[str] = Field(description="`variant=` names that select it")
    weights: str | None = Field(
        description="Parakeet: the configured .nemo path; Whisper: the registry source; null when unknown"
    )
    workers: list[str] = Field(description="realtime workers heartbeating now that serve it")


class ModelsView(BaseModel):
    default_model: str
    translation_model: str
    whisper: list[WhisperModel] = Field(description="the model registry: what `model=` may name in batch and realtime")
    engine_weights: list[EngineWeights] = Field(description="engines whose weights are configured by a setting")
    realtime: list[RealtimeModel] = Field(description="models the realtime pool serves, or that settings name for it")


def _present(source: str) -> bool | None:
    # Hub ids look like "owner/name" and do not exist as paths; absolute or ./ paths are local.
    if os.path.isabs(source) or source.startswith((".", "~")) or os.path.exists(source):
        return os.path.exists(os.path.expanduser(source))
    return None


def _weights(source: str | None) -> str | None:
    return None if source is None else mask_url(source)


@router.get("/models", response_model=ModelsView)
async def models(principal: Admin, services: ServicesDep) -> ModelsView:
    """The Whisper model registry with aliases and where each is served, engines' configured
    weights, and the realtime models with their backend and workers."""
    settings = services.settings
    entries = model_registry.available(settings)
    aliases = model_registry.aliases(settings)
    workers = (await realtime_pool(services)).workers
    # The transcribers that load their model from the registry (engines/faster_whisper,
    # and whisperx-full through it); the other stages' engines take no `model=`.
    batch = [
        ServingEngine(engine_id=e.id, stage=e.stage, word_timestamps=e.word_timestamps)
        for e in catalogue.ENGINES.values()
        if e.id in ("faster-whisper", "whisperx-full")
    ]
    whisper = [
        WhisperModel(
            id=name,
            english_only=entry.english_only,
            default=name == settings.default_model,
            aliases=sorted(a for a, target in aliases.items() if target == name and a != name),
            source=mask_url(entry.source),
            source_kind="configured" if name in settings.models else ("bundled-split" if entry.parts else "bundled"),
            present_on_gateway=_present(entry.source),
            batch_engines=batch,
            realtime_workers=[w.id for w in workers if name in w.models],
        )
        for name, entry in entries.items()
    ]
    weights = []
    for info in catalogue.ENGINES.values():
        if info.weights_setting:
            value = getattr(settings, info.weights_setting)
            weights.append(
                EngineWeights(
                    engine_id=info.id,
                    stage=info.stage,
                    setting=f"DALSTON_{info.weights_setting.upper()}",
                    value=None if value is None else mask_url(value),
                    configured=bool(value),
                )
            )
    names = sorted(
        {m for w in workers for m in w.models} | set(settings.parakeet_models) | set(settings.realtime_variants.values())
    )
    realtime = []
    for name in names:
        backend = catalogue.realtime_backend(name, settings)
        entry = entries.get(aliases.get(name, name))
        realtime.append(
            RealtimeModel(
                id=name,
                backend=backend.id,
                backend_summary=backend.summary,
                variants=sorted(v for v, target in settings.realtime_variants.items() if target == name),
                weights=_weights(
                    settings.parakeet_models.get(name) if backend.id == "parakeet" else (entry.source if entry else None)
                ),
                workers=[w.id for w in workers if name in w.models],
            )
        )
    return ModelsView(
        default_model=settings.default_model,
        translation_model=settings.translation_model,
        whisper=whisper,
        engine_weights=weights,
        realtime=realtime,
    )
