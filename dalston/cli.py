"""The `dalston` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dalston.embedded import DataDirLocked
from dalston.up import migrate_command, resolve_settings, up_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dalston", description="Self-hosted speech-to-text server")
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run every service locally (embedded PostgreSQL/Redis unless URLs are set)")
    up.add_argument("-p", "--port", type=int, default=None, help="gateway port (env DALSTON_PORT, default 8000)")
    up.add_argument("--host", default=None, help="gateway bind address (env DALSTON_HOST, default 127.0.0.1)")
    up.add_argument("--data-dir", type=Path, default=None, help="state directory (env DALSTON_DATA_DIR, default .dalston)")

    migrate = commands.add_parser("migrate", help="apply database migrations and make sure an admin API key exists")
    migrate.add_argument("--data-dir", type=Path, default=None, help="state directory (env DALSTON_DATA_DIR)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = resolve_settings(host=getattr(args, "host", None), port=getattr(args, "port", None), data_dir=args.data_dir)
    try:
        if args.command == "up":
            return up_command(settings)
        return migrate_command(settings)
    except DataDirLocked as exc:
        print(f"dalston: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
