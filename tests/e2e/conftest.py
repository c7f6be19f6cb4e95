"""Fleet fixtures for end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from harness import RunningFleet, start_fleet


@pytest.fixture(scope="module", params=["fs", "s3"])
def any_fleet(request, tmp_path_factory) -> Iterator[RunningFleet]:
    """The fleet once per storage backend."""
    extra = request.getfixturevalue("s3_env") if request.param == "s3" else {}
    yield from start_fleet(request.param, tmp_path_factory.mktemp(f"fleet-{request.param}"), extra)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Iterator[RunningFleet]:
    """The fleet on the default (filesystem) backend."""
    yield from start_fleet("fs", tmp_path_factory.mktemp("fleet-fs"), {})
