"""The engine contract: what every batch engine implements, and the helpers they share.

An engine is loaded once per process (`load`), then handles one task at a time
(`process`): it reads its inputs from object storage, writes its artifacts under
`task.output_prefix` and returns the key of its output JSON. The runner owns everything
else (streams, events, retries, heartbeats).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from shared import catalogue, keys
from shared.contracts import TaskMessage
from shared.storage import ObjectStore

M = TypeVar("M", bound=BaseModel)


class EngineError(Exception):
    """A failure the engine understands. `retryable=False` means another attempt cannot help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


class Engine(Protocol):
    engine_id: str

    def load(self) -> None:
        """Load models. Called once at process start; models stay loaded between tasks."""

    def process(self, task: TaskMessage, store: ObjectStore, workdir: Path) -> str:
        """Run one task and return the storage key of its output JSON."""


def create(engine_id: str) -> Engine:
    """The catalogue entry's engine class, instantiated; imports only that engine's module."""
    module, _, attr = catalogue.engine(engine_id).entry.partition(":")
    engine: Engine = getattr(importlib.import_module(module), attr)()
    return engine


def config_of(task: TaskMessage, model: type[M]) -> M:
    """The task's config, which must be the `model` this engine's stage takes."""
    if not isinstance(task.config, model):
        raise EngineError(f"task {task.name} carries a {type(task.config).__name__}, not a {model.__name__}", retryable=False)
    return task.config


def output_key(task: TaskMessage) -> str:
    return keys.task_output(task.output_prefix)


def read_input(store: ObjectStore, task: TaskMessage, name: str, model: type[M]) -> M:
    """Load the output JSON of dependency `name` as `model`."""
    if name not in task.inputs:
        raise EngineError(f"task {task.name} has no input {name!r}", retryable=False)
    try:
        return model.model_validate_json(store.get_bytes(task.inputs[name]))
    except ValidationError as exc:
        raise EngineError(f"input {name!r} is not a valid {model.__name__}: {exc}", retryable=False) from exc


def write_output(store: ObjectStore, task: TaskMessage, output: BaseModel) -> str:
    key = output_key(task)
    store.put_bytes(key, output.model_dump_json().encode())
    return key
