"""The realtime decode scheduler's order and the capacity it measures (a recording backend
stands in for the model: what is checked is the order decodes run in, not their text)."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest
from support import until

from realtime_worker.asr import Decoded
from realtime_worker.scheduler import FINAL, PARTIAL, DecodeScheduler, FinalLoad


class Recording:
    """Decodes the first sample's value as text; the first decode blocks until released."""

    name = "recording"

    def __init__(self) -> None:
        self.order: list[str] = []
        self.gate = threading.Event()
        self.busy = threading.Event()  # the first decode has begun and waits on the gate

    def decode(self, audio: np.ndarray, *, final: bool, **options) -> Decoded:
        if not self.order:
            self.busy.set()
            self.gate.wait(5)
        self.order.append(f"{'F' if final else 'P'}{int(audio[0])}")
        time.sleep(0.01)
        return Decoded(text=str(int(audio[0])))


def clip(n: int) -> np.ndarray:
    return np.full(10, n, dtype=np.float32)


async def test_finals_first_earliest_deadline_first_and_stale_partials_replaced() -> None:
    backend = Recording()
    scheduler = DecodeScheduler(backend)  # type: ignore[arg-type]
    scheduler.start()
    now = scheduler.clock()
    blocker = scheduler.submit(FINAL, clip(0), deadline=now)
    await until(backend.busy.is_set, "the blocker started decoding")  # everything below queues behind it
    partial_a1 = scheduler.submit(PARTIAL, clip(11), deadline=now + 0.1, session="a")
    late_final = scheduler.submit(FINAL, clip(2), deadline=now + 1.0, session="b")
    partial_b = scheduler.submit(PARTIAL, clip(20), deadline=now + 0.05, session="b")
    early_final = scheduler.submit(FINAL, clip(1), deadline=now + 0.2, session="a")
    dropped = scheduler.submit(FINAL, clip(9), deadline=now, session="c")
    dropped.cancel()  # speech resumed: the speculative final is not run
    partial_a2 = scheduler.submit(PARTIAL, clip(12), deadline=now + 0.3, session="a")  # replaces a1
    assert partial_a1.cancelled() and scheduler.pending_finals == 2
    backend.gate.set()
    results = await asyncio.gather(blocker, early_final, late_final, partial_b, partial_a2)
    assert [r.text for r in results] == ["0", "1", "2", "20", "12"]
    assert backend.order == ["F0", "F1", "F2", "P20", "P12"]
    assert scheduler.busy_s[FINAL] > 0 and scheduler.partial_cost_s > 0
    await scheduler.close()


async def test_a_failing_decode_fails_only_its_own_future() -> None:
    class Failing(Recording):
        def decode(self, audio: np.ndarray, *, final: bool, **options) -> Decoded:
            if int(audio[0]) == 1:
                raise RuntimeError("model exploded")
            return Decoded(text="ok")

    scheduler = DecodeScheduler(Failing())  # type: ignore[arg-type]
    scheduler.start()
    bad = scheduler.submit(FINAL, clip(1), deadline=0.0)
    good = scheduler.submit(FINAL, clip(2), deadline=1.0)
    with pytest.raises(RuntimeError, match="exploded"):
        await bad
    assert (await good).text == "ok"
    await scheduler.close()


def test_partials_thin_out_when_they_no_longer_fit_beside_the_finals() -> None:
    scheduler = DecodeScheduler(Recording())  # type: ignore[arg-type]
    scheduler.partial_cost_s = 0.1
    assert scheduler.partial_interval(0.4, sessions=1, final_share=0.1) == 0.4
    # 4 sessions × 0.1 s per partial in the 0.5 s the finals leave: one partial each 0.8 s.
    assert scheduler.partial_interval(0.4, sessions=4, final_share=0.4) == pytest.approx(0.8)
    # Finals take (nearly) everything: partials become rare, never impossible.
    assert scheduler.partial_interval(0.4, sessions=4, final_share=0.95) == pytest.approx(4.0)
    # One session whose partials cost 0.47 s: at most half the decoder, one each 0.94 s.
    scheduler.partial_cost_s = 0.47
    assert scheduler.partial_interval(0.4, sessions=1, final_share=0.1) == pytest.approx(0.94)


def test_capacity_follows_the_measured_cost_of_finals() -> None:
    meter = FinalLoad(maximum=8, target=0.75, min_session_s=20)
    assert meter.capacity() == 8  # nothing measured: the configured capacity
    busy = 0.0
    for second in range(0, 31, 2):
        meter.observe(float(second), busy, sessions=2)
        busy += 2 * 2 * 0.2  # each session's finals take 0.2 s of decoder per second
    assert meter.per_session == pytest.approx(0.2)
    assert meter.capacity() == 3  # floor(0.75 / 0.2)
    assert meter.share(3) == pytest.approx(0.6)
    cheap = FinalLoad(maximum=4, min_session_s=1)
    cheap.observe(0.0, 0.0, 1)
    cheap.observe(10.0, 0.1, 1)
    assert cheap.capacity() == 4  # never more than configured
