"""shared.scratch: a killed process's scratch entries are swept, a live one's are not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from shared import scratch


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_sweep_removes_only_entries_of_processes_that_are_gone(tmp_path: Path) -> None:
    dead = _dead_pid()
    upload = tmp_path / f"dalston-upload-{dead}-abc"
    upload.mkdir()
    (upload / "upload").write_bytes(b"x" * 1000)
    audio = tmp_path / f"dalston-audio-{dead}-def.wav"
    audio.write_bytes(b"y" * 10)
    mine = tmp_path / f"dalston-upload-{os.getpid()}-ghi"  # this process is alive: an upload in progress
    mine.mkdir()
    foreign = tmp_path / "dalston-upload-notapid"  # not a name we give
    foreign.mkdir()

    assert scratch.sweep(scratch.UPLOAD, tmp_path) == (1, 1000)
    assert not upload.exists() and mine.exists() and foreign.exists()
    assert audio.exists()  # another kind: its owner sweeps it
    assert scratch.sweep(scratch.AUDIO, tmp_path) == (1, 10)
    assert not audio.exists()


def test_entries_are_named_after_their_process(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    made = scratch.make_dir("engine-prepare")
    assert made.parent == tmp_path and made.name.startswith(f"dalston-engine-prepare-{os.getpid()}-")
    assert scratch.sweep("engine-prepare", tmp_path) == (0, 0)  # still ours
