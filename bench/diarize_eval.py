"""Speaker detection quality on the diarization dev set: the current algorithm against a baseline commit.

    .venv/bin/python bench/diarize_eval.py                       # engine level, this checkout vs the baseline
    .venv/bin/python bench/diarize_eval.py --fleet               # + word attribution through a running fleet
    .venv/bin/python bench/diarize_eval.py --baseline REV --only NAME ...

Per recording of tests/fixtures/diarize_dev (manifest.json: its truth is NAME.rttm), with no
speaker count given (how most callers ask): the true and found speaker counts, DER with a
±0.25 s forgiveness collar and with none (pyannote.metrics; overlapping speech scored), and
word attribution — the share of words given the speaker who said them, words taken from one
tiny.en transcription per recording and given speakers by merge's own rule
(engines/merge/speakers.py), hypothesis speakers mapped one-to-one onto true ones. Both
algorithms diarize in child processes, the baseline from a git worktree of `--baseline`.
`--fleet` also submits each recording to a fleet started from this checkout (gateway →
prepare → transcribe ‖ diarize → merge) and scores the words of the returned transcript.
The tune and held-out splits are summarised separately.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "e2e")]

from diarization import DEV_SET, attribution, der, read_rttm  # noqa: E402

from shared.contracts import SpeakerTurn  # noqa: E402

BASELINE = "82354c8"  # the last commit whose count came from one distance threshold (0.36)

# Runs in a child process with the checkout to measure first on sys.path: prints turns per file.
DIARIZE_CHILD = """
import json, sys
import numpy as np
from engines.diarize_default.engine import DefaultDiarizerEngine
from shared.audio import decode
from shared.contracts import SpeakerOptions
engine = DefaultDiarizerEngine()
engine.load()
out = {}
for path in sys.argv[1:]:
    audio, _ = decode(path)
    turns, _ = engine.diarize(np.ascontiguousarray(audio.mean(axis=1), dtype=np.float32), SpeakerOptions())
    out[path] = [t.model_dump() for t in turns]
print(json.dumps(out))
"""


def diarize_all(tree: Path, paths: list[Path]) -> dict[Path, list[SpeakerTurn]]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    env.pop("DALSTON_DIARIZE_THRESHOLD", None)
    result = subprocess.run(
        [sys.executable, "-c", DIARIZE_CHILD, *map(str, paths)], cwd=tree, env=env, capture_output=True, text=True
    )
    if result.returncode:
        raise SystemExit(f"diarizing from {tree} failed:\n{result.stderr[-3000:]}")
    found = json.loads(result.stdout.strip().splitlines()[-1])
    return {Path(p): [SpeakerTurn(**t) for t in turns] for p, turns in found.items()}


def transcribe_words(paths: list[Path]) -> dict[Path, list[tuple[float, float]]]:
    from bench.speech import transcribe
    from shared import model_registry
    from shared.audio import decode
    from shared.settings import get_settings

    settings = get_settings()
    model = model_registry.load_whisper(model_registry.resolve(None, settings), settings)
    out = {}
    for path in paths:
        audio, _ = decode(path)
        transcript = transcribe(model, np.ascontiguousarray(audio.mean(axis=1), dtype=np.float32), settings.whisper_beam_size)
        out[path] = [(w.start, w.end) for s in transcript.segments for w in s.words]
    return out


def words_with_speakers(times: list[tuple[float, float]], turns: list[SpeakerTurn]) -> list[tuple[float, float, str | None]]:
    from engines.merge.speakers import speaker_at

    return [(start, end, speaker_at(start, end, turns) if turns else None) for start, end in times]


def fleet_words(paths: list[Path]) -> dict[Path, list[tuple[float, float, str | None]]]:
    """Each recording through a fleet started from this checkout, diarize without a count."""
    import httpx
    import redis
    from harness import API_KEY, submit, wait_for
    from support import create_database, drop_database, free_port

    from dalston.fleet import Fleet, default_services, wait_http

    out: dict[Path, list[tuple[float, float, str | None]]] = {}
    redis_url = "redis://127.0.0.1:6379/9"
    redis.Redis.from_url(redis_url).flushdb()
    database_url = create_database()
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        env = {
            "DALSTON_DATABASE_URL": database_url,
            "DALSTON_REDIS_URL": redis_url,
            "DALSTON_DATA_DIR": data,
            "DALSTON_API_KEY": API_KEY,
            "DALSTON_LOG_LEVEL": "WARNING",
        }
        subprocess.run([sys.executable, "-m", "dalston", "migrate"], env={**os.environ, **env}, cwd=ROOT, check=True)
        fleet = Fleet(default_services(port), env, cwd=ROOT, output=None)
        fleet.start()
        try:
            wait_http(f"http://127.0.0.1:{port}/health", timeout=180)
            client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {API_KEY}"})
            for path in paths:
                job = submit(client, path, speaker_detection="diarize").json()
                done = wait_for(client, job["id"], timeout=600)
                if done["status"] != "completed":
                    raise SystemExit(f"{path.name}: job {done['status']}: {done.get('error')}")
                segments = done["transcript"]["segments"]
                out[path] = [(w["start"], w["end"], w.get("speaker")) for s in segments for w in s["words"]]
        finally:
            fleet.stop()
            drop_database(database_url)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default=BASELINE, help="commit of the algorithm to compare with")
    parser.add_argument("--fleet", action="store_true", help="also score word attribution through a running fleet")
    parser.add_argument("--only", nargs="*", help="recording names to run (default: all)")
    parser.add_argument("--dev", type=Path, default=DEV_SET, help="a folder with manifest.json, NAME.flac and NAME.rttm")
    args = parser.parse_args()

    recordings = json.loads((args.dev / "manifest.json").read_text())["recordings"]
    if args.only:
        recordings = [r for r in recordings if r["name"] in args.only]
    paths = [args.dev / f"{r['name']}.flac" for r in recordings]
    truth = {p: read_rttm(p.with_suffix(".rttm")) for p in paths}

    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "baseline"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(tree), args.baseline], cwd=ROOT, check=True, capture_output=True
        )
        try:
            old = diarize_all(tree, paths)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
    new = diarize_all(ROOT, paths)
    times = transcribe_words(paths)
    fleet = fleet_words(paths) if args.fleet else {}

    rows = []
    for r, path in zip(recordings, paths):
        ref = truth[path]
        row = {"name": r["name"], "split": r["split"], "true": len({t.speaker for t in ref})}
        for label, found in (("old", old[path]), ("new", new[path])):
            row[f"{label}_count"] = len({t.speaker for t in found})
            row[f"{label}_der25"] = der(ref, found, collar=0.25)
            row[f"{label}_der0"] = der(ref, found)
            row[f"{label}_attr"] = attribution(ref, words_with_speakers(times[path], found))
        if path in fleet:
            row["fleet_attr"] = attribution(ref, fleet[path])
        rows.append(row)

    print(f"baseline {args.baseline} (old) vs this checkout (new); DER collar ±0.25 s / none; attribution of tiny.en words")
    header = f"{'recording':<24} {'split':<8} {'true':>4} {'old':>4} {'new':>4}  {'DER25 old→new':>15}  {'DER0 old→new':>15}  {'attr old→new':>15}"
    print(header + ("  fleet attr" if fleet else ""))
    for row in rows:
        line = (
            f"{row['name']:<24} {row['split']:<8} {row['true']:>4} {row['old_count']:>4} {row['new_count']:>4}  "
            f"{row['old_der25']:>6.1%} → {row['new_der25']:>6.1%}  {row['old_der0']:>6.1%} → {row['new_der0']:>6.1%}  "
            f"{row['old_attr']:>6.1%} → {row['new_attr']:>6.1%}"
        )
        print(line + (f"  {row['fleet_attr']:>9.1%}" if "fleet_attr" in row else ""))
    for split in ("tune", "heldout"):
        part = [row for row in rows if row["split"] == split]
        if not part:
            continue
        summary = [f"\n{split} ({len(part)} recordings):"]
        for label in ("old", "new"):
            right = sum(row[f"{label}_count"] == row["true"] for row in part)
            summary.append(
                f"  {label}: count right {right}/{len(part)} ({right / len(part):.0%}), "
                f"median DER25 {statistics.median(row[f'{label}_der25'] for row in part):.1%}, "
                f"median DER0 {statistics.median(row[f'{label}_der0'] for row in part):.1%}, "
                f"median attribution {statistics.median(row[f'{label}_attr'] for row in part):.1%}"
            )
        worst = max(part, key=lambda row: row["new_der25"] - row["old_der25"])
        summary.append(f"  largest DER25 change new−old: {worst['new_der25'] - worst['old_der25']:+.1%} ({worst['name']})")
        if fleet:
            summary.append(f"  fleet attribution: min {min(row['fleet_attr'] for row in part):.1%}")
        print("\n".join(summary))


if __name__ == "__main__":
    main()
