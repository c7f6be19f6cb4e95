"""Fleet overhead against bare faster-whisper, and gateway memory during a large upload.

    .venv/bin/python bench/batch_overhead.py [--seconds 600 60] [--upload-gb 1.0]

For each duration: the same WAV is transcribed (1) by faster-whisper called directly in a
child process and (2) as a job through gateway → orchestrator → prepare → faster-whisper →
merge, with the same model, compute type, beam and threads, in the same run. Both sides
are warmed up first (model loaded, one short decode), so the ratio is the fleet's own
overhead: upload, probe, storage, queueing, prepare, merge. Peak RSS of the fleet's
transcribing process is compared with the bare process's.

Then a ~1 GB WAV is uploaded while the gateway's RSS is sampled (the prepare engine is
stopped and the job cancelled, so only the gateway's upload path is measured).

Needs PostgreSQL and Redis (defaults: the test services on 127.0.0.1).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from support import create_database, drop_database, free_port  # noqa: E402

from bench.speech import big_wav, long_speech_wav  # noqa: E402
from dalston.fleet import Fleet, default_services, wait_http  # noqa: E402

OUT = ROOT / "bench" / "out"
API_KEY = "dk_bench_" + uuid.uuid4().hex

BARE = r"""
import json, resource, sys, time
from faster_whisper import WhisperModel, decode_audio
from shared.model_registry import resolve
path, warmup, threads, beam, compute = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
model = WhisperModel(resolve(None).source, device="cpu", compute_type=compute, cpu_threads=threads)
def run(p):
    segments, info = model.transcribe(decode_audio(p), beam_size=beam, word_timestamps=True,
                                      vad_filter=False, condition_on_previous_text=False)
    return info, list(segments)
run(warmup)
began = time.perf_counter()
info, segments = run(path)
elapsed = time.perf_counter() - began
print(json.dumps({"seconds": elapsed, "words": sum(len(s.words) for s in segments),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def bare(path: Path, warmup: Path, threads: int, beam: int, compute: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", BARE, str(path), str(warmup), str(threads), str(beam), compute],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_job(client: httpx.Client, path: Path) -> tuple[float, dict]:
    began = time.perf_counter()
    with path.open("rb") as f:
        response = client.post("/v1/audio/transcriptions", files={"file": (path.name, f, "audio/wav")})
    response.raise_for_status()
    job_id = response.json()["id"]
    while True:
        job = client.get(f"/v1/audio/transcriptions/{job_id}").json()
        if job["status"] in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - began
    if job["status"] != "completed":
        raise RuntimeError(f"job ended {job['status']}: {job.get('error')}")
    return elapsed, job


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the kernel's record of the process's peak resident set."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def sample_rss(pid: int, stop: threading.Event, samples: list[float]) -> None:
    proc = psutil.Process(pid)
    while not stop.is_set():
        samples.append(proc.memory_info().rss / 2**20)
        time.sleep(0.02)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, nargs="+", default=[600.0, 60.0])
    parser.add_argument("--repeat", type=int, default=2, help="alternating bare/fleet runs per duration; the best of each counts")
    parser.add_argument("--upload-gb", type=float, default=1.0, help="0 skips the upload measurement")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/7")
    args = parser.parse_args()

    OUT.mkdir(parents=True, exist_ok=True)
    warmup = ROOT / "tests" / "fixtures" / "short_en.wav"
    inputs = {s: long_speech_wav(OUT / f"speech_{int(s)}s.wav", s) for s in args.seconds}

    database_url = create_database()
    port = free_port()
    env = {
        "DALSTON_DATABASE_URL": database_url,
        "DALSTON_REDIS_URL": args.redis_url,
        "DALSTON_DATA_DIR": str(OUT / "data"),
        "DALSTON_API_KEY": API_KEY,
        "DALSTON_WHISPER_CPU_THREADS": str(args.threads),
        "DALSTON_WHISPER_BEAM_SIZE": str(args.beam),
        "DALSTON_WHISPER_COMPUTE_TYPE": args.compute_type,
        "DALSTON_LOG_LEVEL": "WARNING",
    }
    import redis

    redis.Redis.from_url(args.redis_url).flushdb()
    subprocess.run(
        [sys.executable, "-m", "dalston", "migrate"], env={**os.environ, **env}, cwd=ROOT, check=True, capture_output=True
    )
    fleet = Fleet(default_services(port), env, cwd=ROOT, output=None)
    fleet.start()
    print(f"model tiny.en, compute {args.compute_type}, beam {args.beam}, threads {args.threads}, {os.cpu_count()} cores")
    try:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=120)
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=600)
        run_job(client, warmup)  # engines warm: model loaded and one decode done
        bare_peak_mb = 0.0
        for seconds, path in inputs.items():
            # Alternate the two so a burst of load elsewhere on the machine hits both alike.
            bares, fleets = [], []
            for _ in range(args.repeat):
                b = bare(path, warmup, args.threads, args.beam, args.compute_type)
                bares.append(b["seconds"])
                bare_peak_mb = max(bare_peak_mb, b["peak_rss_mb"])
                fleet_s, job = run_job(client, path)
                fleets.append(fleet_s)
            words = len(job["transcript"]["words"])
            stages = {s["name"]: round((s["duration_ms"] or 0) / 1000, 2) for s in job["stages"]}
            print(f"\n{seconds:.0f} s of speech (best of {args.repeat})")
            print(f"  bare faster-whisper : {min(bares):.2f} s ({b['words']} words; runs {[round(x, 2) for x in bares]})")
            print(
                f"  fleet job wall      : {min(fleets):.2f} s ({words} words; runs {[round(x, 2) for x in fleets]}; "
                f"last stages {stages})"
            )
            print(f"  ratio fleet/bare    : {min(fleets) / min(bares):.3f}")
        # The engine's high-water mark spans every job it ran; the bare side's is its largest run.
        engine_rss = peak_rss_mb(fleet.pid("engine-faster-whisper"))
        print(
            f"\npeak RSS: bare process {bare_peak_mb:.0f} MB, fleet faster-whisper engine {engine_rss:.0f} MB, "
            f"ratio {engine_rss / bare_peak_mb:.3f}"
        )

        if args.upload_gb > 0:
            big = OUT / "big.wav"
            if not big.exists() or abs(big.stat().st_size - args.upload_gb * 2**30) > 2**20:
                big_wav(big, int(args.upload_gb * 2**30))
            fleet.kill("engine-prepare")  # measure the gateway only; nothing decodes the upload
            gateway = fleet.pid("gateway")
            before = psutil.Process(gateway).memory_info().rss / 2**20
            samples: list[float] = []
            stop = threading.Event()
            sampler = threading.Thread(target=sample_rss, args=(gateway, stop, samples))
            sampler.start()
            began = time.perf_counter()
            with big.open("rb") as f:
                response = client.post("/v1/audio/transcriptions", files={"file": ("big.wav", f, "audio/wav")})
            elapsed = time.perf_counter() - began
            stop.set()
            sampler.join()
            response.raise_for_status()
            client.post(f"/v1/audio/transcriptions/{response.json()['id']}/cancel")
            print(
                f"\nupload of {big.stat().st_size / 2**30:.2f} GiB in {elapsed:.1f} s: gateway RSS before {before:.0f} MB, "
                f"peak during upload {max(samples):.0f} MB (+{max(samples) - before:.0f} MB)"
            )
    finally:
        fleet.stop()
        drop_database(database_url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
