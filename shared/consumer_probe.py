"""`python -m shared.consumer_probe GROUP PREFIX`: a container liveness probe for stream consumers.

Engines and the orchestrator serve no HTTP, so a probe asks Redis instead: exit 0 when the
consumer this container runs still has its liveness key (shared.streams.Liveness). A task of
the process's own refreshes that key whatever its work is doing, so it lapses only when the
process's event loop is stuck or the process is gone.

Consumers are named `<prefix>-<hostname>-<pid>` (engines.runner: the engine id;
the orchestrator: `orchestrator`). A probe runs inside the container, so it shares the
process's hostname and sees its pid in /proc: the candidate names are few and exact, and
nothing depends on the consumer having read its stream yet (Redis lists a consumer only
once it has). Redis being unreachable is not the process's fault and a restart would not
help (consumers ride out outages by themselves), so it passes. A container without
DALSTON_REDIS_URL fails, saying so.
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Iterable
from pathlib import Path

import redis
from redis.exceptions import RedisError

from shared import keys
from shared.settings import get_settings


def local_pids(proc: Path = Path("/proc")) -> list[int]:
    """The processes this container sees."""
    return sorted(int(p.name) for p in proc.iterdir() if p.name.isdigit())


def alive(r: redis.Redis, group: str, prefix: str, host: str, pids: Iterable[int]) -> bool:
    """Whether one of `pids` on `host` is a consumer of `group` named with `prefix` that keeps its key."""
    names = [keys.consumer_alive(group, f"{prefix}-{host}-{pid}") for pid in pids]
    return bool(names) and int(r.exists(*names)) > 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.consumer_probe", description=__doc__.splitlines()[0])
    parser.add_argument("group", help=f"the consumer group: {keys.ENGINE_GROUP} or {keys.ORCHESTRATOR_GROUP}")
    parser.add_argument("prefix", help="what the consumer's name starts with: the engine id, or `orchestrator`")
    parser.add_argument("--host", default=socket.gethostname(), help="default: this host")
    parser.add_argument("--pid", type=int, action="append", help="default: every process this container sees")
    args = parser.parse_args(argv)
    url = get_settings().redis_url
    if not url:
        print("DALSTON_REDIS_URL is not set", file=sys.stderr)
        return 1
    r = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        if alive(r, args.group, args.prefix, args.host, args.pid or local_pids()):
            return 0
        print(f"no live {args.prefix} consumer of {args.group} on host {args.host}", file=sys.stderr)
        return 1
    except RedisError as exc:
        print(f"Redis unreachable ({exc}); not this process's fault: passing", file=sys.stderr)
        return 0
    finally:
        r.close()


if __name__ == "__main__":
    sys.exit(main())
