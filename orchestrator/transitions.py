"""Job and task state transitions.

Every function here runs inside the caller's transaction, with the job row locked, so
concurrent orchestrators and duplicate deliveries see one consistent order. They only
change rows; what must happen outside the database afterwards (stream messages, waiter
notifications) is returned as `Effects` and performed after commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.dag import DagError, JobSpec, build_dag, ready_nodes
from shared import keys
from shared.catalogue import SpeakerDetection
from shared.contracts import Event, JobParameters, JobPurpose, MergeConfig, TaskMessage
from shared.db import Job, JobStatus, Task, TaskStatus
from shared.settings import Settings

log = structlog.get_logger()

Tasks = dict[str, Task]  # a job's tasks by name

_TASK_TERMINAL = {TaskStatus.completed.value, TaskStatus.failed.value, TaskStatus.skipped.value}


@dataclass(frozen=True)
class Enqueued:
    message: TaskMessage
    queued_at: datetime  # identifies this enqueue when the stream message id is recorded


@dataclass
class Effects:
    enqueued: list[Enqueued] = field(default_factory=list)
    finished: list[tuple[str, str]] = field(default_factory=list)  # (job_id, final status) to notify
    retried: list[str] = field(default_factory=list)  # engine ids of failed attempts queued again (metrics)

    def __iadd__(self, other: Effects) -> Effects:
        self.enqueued += other.enqueued
        self.finished += other.finished
        self.retried += other.retried
        return self


def utcnow() -> datetime:
    return datetime.now(UTC)


def _from_unix(seconds: float | None) -> datetime:
    return datetime.fromtimestamp(seconds, UTC) if seconds is not None else utcnow()


def _done(task: Task) -> bool:
    """Finished in a way that lets dependents run: completed, or an optional task that failed."""
    return task.status == TaskStatus.completed.value or (task.status == TaskStatus.failed.value and not task.required)


# --- events -----------------------------------------------------------------------


async def handle(db: AsyncSession, job: Job, tasks: Tasks, event: Event, settings: Settings) -> Effects:
    if event.type == "job.created":
        return await expand(db, job, tasks, settings)
    if event.type == "job.cancelled":
        return cancel(job, tasks)
    if not event.task_id:
        raise ValueError(f"{event.type} event without task_id")
    task = next((t for t in tasks.values() if str(t.id) == event.task_id), None)
    if task is None:
        log.warning("event_for_unknown_task", job_id=str(job.id), task_id=event.task_id, type=event.type)
        return Effects()
    if event.type == "task.started":
        started(job, task, event)
        return Effects()
    if event.type == "task.completed":
        return completed(job, tasks, task, event)
    return failed(job, tasks, task, event.error or "unknown error", retryable=event.retryable, attempt=event.attempt)


async def expand(db: AsyncSession, job: Job, tasks: Tasks, settings: Settings) -> Effects:
    """job.created: build the DAG, write the task rows and enqueue the roots."""
    if job.status != JobStatus.pending.value or tasks:
        return Effects()
    try:
        spec = JobSpec(
            model=job.model,
            language=job.language,
            speaker_detection=SpeakerDetection(job.speaker_detection),
            channels=job.audio_channels,
            parameters=JobParameters.model_validate(job.parameters or {}),
            stage_engines=settings.stage_engines,
            purpose=JobPurpose(job.purpose),
        )
    except ValueError as exc:  # includes pydantic's ValidationError
        return finish(job, tasks, JobStatus.failed, error=f"the job's parameters are invalid: {exc}")
    try:
        nodes = build_dag(spec)
    except DagError as exc:
        return finish(job, tasks, JobStatus.failed, error=str(exc))
    for node in nodes:
        tasks[node.name] = Task(
            job_id=job.id,
            name=node.name,
            stage=node.stage,
            engine_id=node.engine_id,
            depends_on=list(node.depends_on),
            config=node.config.model_dump(mode="json"),
            required=node.required,
            status=TaskStatus.pending.value,
            attempt=0,
            max_retries=settings.task_max_retries,
        )
    db.add_all(tasks.values())
    await db.flush()  # assigns task ids, which the stream messages carry
    job.status = JobStatus.running.value
    job.started_at = utcnow()
    log.info("job_expanded", job_id=str(job.id), tasks=[n.name for n in nodes])
    return enqueue_ready(job, tasks)


def started(job: Job, task: Task, event: Event) -> None:
    if job.status != JobStatus.running.value or task.status != TaskStatus.ready.value:
        return
    if event.attempt is not None and event.attempt != task.attempt:
        return  # a superseded attempt
    task.status = TaskStatus.running.value
    task.started_at = _from_unix(event.started_at)


def completed(job: Job, tasks: Tasks, task: Task, event: Event) -> Effects:
    # Any attempt's output is good: all attempts write under the same prefix.
    if task.status in (TaskStatus.completed.value, TaskStatus.failed.value):
        return Effects()  # duplicate delivery
    if job.status == JobStatus.cancelled.value:
        _record_completion(task, event)  # kept for the record; a cancelled job never advances
        return Effects()
    if job.status != JobStatus.running.value or task.status not in (TaskStatus.ready.value, TaskStatus.running.value):
        return Effects()
    _record_completion(task, event)
    log.info("task_completed", job_id=str(job.id), task=task.name, attempt=task.attempt)
    return _advance(job, tasks)


def failed(job: Job, tasks: Tasks, task: Task, error: str, *, retryable: bool, attempt: int | None) -> Effects:
    if job.status != JobStatus.running.value or task.status not in (TaskStatus.ready.value, TaskStatus.running.value):
        return Effects()
    if attempt is not None and attempt != task.attempt:
        return Effects()  # a superseded attempt
    task.error = error
    if retryable and task.attempt < task.max_retries:
        task.attempt += 1
        task.started_at = None
        log.warning("task_failed_retrying", job_id=str(job.id), task=task.name, attempt=task.attempt, error=error)
        effects = enqueue(job, tasks, task)
        effects.retried.append(task.engine_id)
        return effects
    task.status = TaskStatus.failed.value
    task.completed_at = utcnow()
    if not task.required:
        log.warning("optional_task_failed", job_id=str(job.id), task=task.name, error=error)
        # Reassigned, not appended: the JSONB column tracks changes by identity.
        job.warnings = [*(job.warnings or []), f"{task.stage} ({task.engine_id}) failed, continuing without it: {error}"]
        return _advance(job, tasks)
    return finish(job, tasks, JobStatus.failed, error=f"{task.stage} ({task.engine_id}) failed: {error}")


def cancel(job: Job, tasks: Tasks) -> Effects:
    """job.cancelled: the gateway already set the status; stop everything that has not run."""
    if job.status in (JobStatus.completed.value, JobStatus.failed.value):
        return Effects()
    return finish(job, tasks, JobStatus.cancelled)


# --- scheduling ---------------------------------------------------------------------


def enqueue(job: Job, tasks: Tasks, task: Task) -> Effects:
    task.status = TaskStatus.ready.value
    task.queued_at = utcnow()
    task.stream_message_id = None  # set once the message is on the stream
    message = TaskMessage.model_validate(
        {
            "task_id": str(task.id),
            "job_id": str(job.id),
            "name": task.name,
            "stage": task.stage,
            "engine_id": task.engine_id,
            "attempt": task.attempt,
            "audio_key": job.audio_key,
            # A failed optional dependency has no output; the consumer sees it missing.
            "inputs": {d: tasks[d].output_key for d in task.depends_on if tasks[d].output_key},
            "output_prefix": keys.task_prefix(job.id, task.name),
            "config": task.config,
        }
    )
    if isinstance(message.config, MergeConfig) and job.warnings:
        # Merge copies the job's warnings (failed optional stages) into the transcript.
        message.config = message.config.model_copy(update={"warnings": list(job.warnings)})
    return Effects(enqueued=[Enqueued(message, task.queued_at)])


def enqueue_ready(job: Job, tasks: Tasks) -> Effects:
    effects = Effects()
    done = {name for name, t in tasks.items() if _done(t)}
    not_waiting = {name for name, t in tasks.items() if t.status != TaskStatus.pending.value}
    for name in ready_nodes({n: t.depends_on for n, t in tasks.items()}, done, not_waiting):
        effects += enqueue(job, tasks, tasks[name])
    return effects


def finish(job: Job, tasks: Tasks, status: JobStatus, *, error: str | None = None) -> Effects:
    job.status = status.value
    job.error = error
    job.completed_at = job.completed_at or utcnow()
    if status == JobStatus.completed:
        job.transcript_key = _sink(tasks).output_key
    for task in tasks.values():
        if task.status not in _TASK_TERMINAL:
            task.status = TaskStatus.skipped.value
    log.info("job_finished", job_id=str(job.id), status=status.value, error=error)
    return Effects(finished=[(str(job.id), status.value)])


def timed_out(job: Job, task: Task, settings: Settings, now: datetime) -> float | None:
    """The timeout in seconds if `task` has been running longer than it, else None."""
    if task.status != TaskStatus.running.value or task.started_at is None:
        return None
    timeout = settings.task_timeout_base_s + settings.task_timeout_per_audio_s * job.audio_duration
    return timeout if (now - task.started_at).total_seconds() > timeout else None


def _record_completion(task: Task, event: Event) -> None:
    task.status = TaskStatus.completed.value
    task.output_key = event.output_key
    task.error = None
    task.started_at = _from_unix(event.started_at) if event.started_at is not None else task.started_at
    task.completed_at = _from_unix(event.finished_at)


def _advance(job: Job, tasks: Tasks) -> Effects:
    if all(_done(t) for t in tasks.values()):
        return finish(job, tasks, JobStatus.completed)
    return enqueue_ready(job, tasks)


def _sink(tasks: Tasks) -> Task:
    """The task no other task depends on (merge): its output is the transcript."""
    needed = {d for t in tasks.values() for d in t.depends_on}
    sinks = [t for name, t in tasks.items() if name not in needed]
    if len(sinks) != 1:
        raise RuntimeError(f"task graph has {len(sinks)} sinks, expected one")
    return sinks[0]
