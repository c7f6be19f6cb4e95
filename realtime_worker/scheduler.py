"""One decode scheduler per model: every session's decodes, one at a time, in the order that
keeps finals on time.

CTranslate2 already spreads one decode over every core, so decodes run one after another on
one thread. The order: finals before partials (a final is what a user waits for, a partial
only a preview), earliest deadline first within each kind. A session has at most one partial
queued: a newer one replaces it (the older would show stale text). A cancelled decode that has
not started is dropped; one already running finishes and is discarded by its session.

Cross-session batching (one CTranslate2 call for several sessions' audio) was measured on
CPU and does not pay: a batch of B costs more than B single decodes (bench/realtime_batching.py),
so decodes are not batched here.

The scheduler also measures what the worker can take: the decode time finals cost per
session-second (`FinalLoad`), from which the worker's advertised capacity follows, and the
partial cadence each session may have at the current load.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from realtime_worker import metrics
from realtime_worker.asr import Backend, Decoded

FINAL = 0
PARTIAL = 1
MAX_PARTIAL_SHARE = 0.5
KIND_NAMES = {FINAL: "final", PARTIAL: "partial"}


@dataclass(order=True)
class _Job:
    kind: int
    deadline: float
    order: int
    run: Callable[[], Decoded] = field(compare=False)
    future: asyncio.Future[Decoded] = field(compare=False)
    session: str | None = field(compare=False)
    submitted: float = field(compare=False)


class DecodeScheduler:
    def __init__(self, backend: Backend, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.backend = backend
        self.clock = clock
        self._heap: list[_Job] = []
        self._partials: dict[str, _Job] = {}  # each session's queued partial
        self._order = itertools.count()
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"decode-{backend.name}")
        self._task: asyncio.Task[None] | None = None
        self.busy_s = {FINAL: 0.0, PARTIAL: 0.0}  # decode time so far, by kind
        self.partial_cost_s = 0.0  # recent partial decode time (moving average)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def submit(
        self, kind: int, audio: np.ndarray, *, deadline: float, session: str | None = None, **options: Any
    ) -> asyncio.Future[Decoded]:
        """Queue a decode due at `deadline` (the clock's time). Cancelling the returned future
        drops it if it has not started. A session's new partial replaces its queued one."""
        future: asyncio.Future[Decoded] = asyncio.get_running_loop().create_future()
        final = kind == FINAL

        def run() -> Decoded:
            return self.backend.decode(audio, final=final, **options)

        job = _Job(kind, deadline, next(self._order), run, future, session, self.clock())
        if kind == PARTIAL and session is not None:
            stale = self._partials.pop(session, None)
            if stale is not None and not stale.future.done():
                stale.future.cancel()
                metrics.PARTIALS_SHED.labels("replaced").inc()
            self._partials[session] = job
        heapq.heappush(self._heap, job)
        self._wake.set()
        self._export_queue()
        return future

    @property
    def pending_finals(self) -> int:
        return sum(1 for j in self._heap if j.kind == FINAL and not j.future.done())

    def partial_interval(self, base_s: float, sessions: int, final_share: float) -> float:
        """How often a session may ask for a partial: `base_s` while partials fit in what the
        finals leave free (`final_share`: their part of the decoder's time), longer as they
        stop fitting, so partials thin out under load and finals keep their time. Partials
        never take more than MAX_PARTIAL_SHARE of the decoder: a final has to wait for a
        partial already running, so a decoder busy with partials delays every final."""
        spare = max(0.1, min(MAX_PARTIAL_SHARE, 0.9 - final_share))
        return max(base_s, sessions * self.partial_cost_s / spare)

    def _export_queue(self) -> None:
        for kind, name in KIND_NAMES.items():
            metrics.DECODE_QUEUE.labels(name).set(sum(1 for j in self._heap if j.kind == kind and not j.future.done()))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._heap:
                job = heapq.heappop(self._heap)
                if job.session is not None and self._partials.get(job.session) is job:
                    del self._partials[job.session]
                if job.future.done():  # cancelled or replaced while queued
                    continue
                self._export_queue()
                kind = KIND_NAMES[job.kind]
                began = self.clock()
                metrics.DECODE_WAIT.labels(kind).observe(began - job.submitted)
                try:
                    result = await loop.run_in_executor(self._executor, job.run)
                except Exception as exc:
                    if not job.future.done():
                        job.future.set_exception(exc)
                else:
                    if not job.future.done():
                        job.future.set_result(result)
                finally:
                    spent = self.clock() - began
                    self.busy_s[job.kind] += spent
                    metrics.DECODE_SECONDS.labels(kind).observe(spent)
                    if job.kind == PARTIAL:
                        self.partial_cost_s = spent if not self.partial_cost_s else 0.8 * self.partial_cost_s + 0.2 * spent
            self._export_queue()


@dataclass
class FinalLoad:
    """The decoder time finals take per session-second, measured between heartbeats, and
    the capacity that follows: as many sessions as keep finals under `target` of the decoder.

    Partials are left out: they thin out under load (`DecodeScheduler.partial_interval`),
    finals cannot. Until `min_session_s` of sessions has been seen the configured capacity
    stands; it is also the ceiling.
    """

    maximum: int
    target: float = 0.5
    min_session_s: float = 20.0
    per_session: float | None = None  # decoder seconds per session-second (moving average)
    observed_session_s: float = 0.0
    _last: tuple[float, float] | None = None  # (clock, final busy seconds)

    def observe(self, now: float, final_busy_s: float, sessions: int) -> None:
        if self._last is not None and sessions > 0:
            elapsed = now - self._last[0]
            if elapsed > 0:
                sample = (final_busy_s - self._last[1]) / (elapsed * sessions)
                self.per_session = sample if self.per_session is None else 0.8 * self.per_session + 0.2 * sample
                self.observed_session_s += elapsed * sessions
        self._last = (now, final_busy_s)

    def share(self, sessions: int) -> float:
        """The part of the decoder's time finals take with `sessions` sessions."""
        return (self.per_session or 0.0) * sessions

    def capacity(self) -> int:
        if self.per_session is None or self.observed_session_s < self.min_session_s:
            return self.maximum
        if self.per_session <= 0:
            return self.maximum
        return max(1, min(self.maximum, math.floor(self.target / self.per_session)))
