"""Scratch files and directories in the temp dir, and sweeping what killed processes left.

Every scratch entry is named `dalston-{kind}-{pid}-…` after the process that made it. A
process removes its own on every exit path it lives through; a SIGKILL leaves them behind
(a half-received upload can be gigabytes). `sweep(kind)`, run when a service starts,
removes the entries of that kind whose process is gone; entries of live processes, such
as another gateway's upload in progress on the same host, are left alone.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

# The gateway's kinds: uploads being received, stored audio being served from S3, realtime
# recordings being assembled (hybrid mode), media being fetched (ElevenLabs source URLs).
UPLOAD, AUDIO, SESSION, MEDIA = "upload", "audio", "session", "media"
GATEWAY_KINDS = (UPLOAD, AUDIO, SESSION, MEDIA)


def prefix(kind: str) -> str:
    """The name prefix for this process's scratch entries of `kind` (pass to tempfile)."""
    return f"dalston-{kind}-{os.getpid()}-"


def make_dir(kind: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix(kind)))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def sweep(kind: str, directory: Path | None = None) -> tuple[int, int]:
    """Remove `kind` scratch entries of processes that no longer run; returns (entries, bytes)."""
    base = directory or Path(tempfile.gettempdir())
    pattern = re.compile(rf"^dalston-{re.escape(kind)}-(\d+)-")
    removed = size = 0
    for entry in base.glob(f"dalston-{kind}-*"):
        match = pattern.match(entry.name)
        if match is None or _alive(int(match.group(1))):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                size += sum(f.stat().st_size for f in entry.rglob("*") if f.is_file())
                shutil.rmtree(entry)
            else:
                size += entry.lstat().st_size
                entry.unlink()
        except OSError:
            continue  # gone meanwhile, or not ours to remove
        removed += 1
    return removed, size
