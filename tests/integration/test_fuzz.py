"""Fuzz the gateway's OpenAPI schema with schemathesis: no 5xx, no hang.

The gateway runs as a real process (`python -m gateway` under uvicorn) on loopback; every
operation in its published schema gets a bounded number of generated requests (valid
and invalid by the schema) sent with an admin key: the run is bounded by example count
(EXAMPLES_PER_OPERATION), never by a wall-clock budget a busy machine could overrun. Any 5xx fails the test with the
request that caused it; a request that takes longer than the client timeout is a hang.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from gateway_process import ADMIN_KEY, Gateway, start_gateway
from hypothesis import HealthCheck, Phase, given, settings

EXAMPLES_PER_OPERATION = 20
MIN_REQUESTS = 300
REQUEST_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def gateway(tmp_path_factory) -> Iterator[Gateway]:
    # Generous request limits: the fuzzer, not the rate limiter, is under test here.
    env = {"DALSTON_RATE_LIMIT_REQUESTS": "100000", "DALSTON_MAX_AUDIO_SECONDS": "30"}
    yield from start_gateway(tmp_path_factory.mktemp("fuzz-gw"), env, worker=False)


def test_schema_fuzz_finds_no_server_errors(gateway: Gateway) -> None:
    schema = schemathesis.openapi.from_url(f"{gateway.base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15, [op.label for op in operations]
    headers = {"Authorization": f"Bearer {ADMIN_KEY}", "xi-api-key": ADMIN_KEY}
    sent: list[str] = []
    failures: list[str] = []

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,  # the same requests every run
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case) -> None:
            response = case.call(headers=headers, timeout=REQUEST_TIMEOUT_S)
            sent.append(f"{response.status_code} {operation.label}")  # noqa: B023 (run inside this iteration)
            if response.status_code >= 500:
                failures.append(
                    f"{response.status_code} {operation.label}: {case.as_curl_command(headers)}\n{response.text[:500]}"  # noqa: B023
                )

        fuzz()

    assert not failures, "\n\n".join(failures[:10])
    assert len(sent) >= MIN_REQUESTS, f"only {len(sent)} requests were generated"
    # The key works, so the fuzzer reaches the handlers rather than only the auth check.
    assert sum(s.startswith("2") for s in sent) >= 50, sent
    gateway.alive()
