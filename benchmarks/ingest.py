"""Ingest throughput: a zip of generated JPEGs through Polytag's real upload path (archive
reading, hashing, dedupe, verify + thumbnail, blob storage, batched SQLite inserts, one commit)
next to a baseline measured in the same run: decode + verify + write each file with Pillow alone.
Prints JSON.

    .venv/bin/python benchmarks/ingest.py                 # 1,000 images of 640×480
    .venv/bin/python benchmarks/ingest.py --images 200 --repeat 3
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

# Settings are read when `app` is first imported: point them at a throwaway data dir first.
_DATA_DIR = Path(tempfile.mkdtemp(prefix="polytag-bench-ingest-"))
os.environ["POLYTAG_DATA_DIR"] = str(_DATA_DIR)
os.environ["POLYTAG_DATABASE_URL"] = f"sqlite:///{_DATA_DIR / 'polytag.db'}"
os.environ["POLYTAG_STORAGE_BACKEND"] = "local"
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from app.db import new_session  # noqa: E402
from app.deps import get_blob_store  # noqa: E402
from app.migrate import upgrade  # noqa: E402
from app.services import assets as asset_service  # noqa: E402
from app.services import projects as project_service  # noqa: E402
from app.services.assets import Upload  # noqa: E402


def cpu_seconds() -> float:
    """User + system CPU time of this process so far, all threads included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def system_cpu_seconds() -> float:
    """The kernel's share of `cpu_seconds` (file creation, writes, syncs)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


def make_jpegs(count: int, size: tuple[int, int], seed: int = 0) -> list[bytes]:
    """Distinct photo-like JPEGs: smooth gradients, some shapes and sensor-like noise."""
    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    images = []
    for _ in range(count):
        base = np.empty((height, width, 3), np.float32)
        for channel in range(3):
            fx, fy = rng.uniform(0.002, 0.02, 2).tolist()
            phase = rng.uniform(0, 6.3)
            base[..., channel] = 128 + 90 * np.sin(x * fx + y * fy + phase)
        for _shape in range(6):
            x0, y0 = int(rng.integers(0, width - 40)), int(rng.integers(0, height - 40))
            base[y0 : y0 + int(rng.integers(20, 160)), x0 : x0 + int(rng.integers(20, 160))] = (
                rng.uniform(0, 255, 3)
            )
        base += rng.normal(0, 6, base.shape)
        buffer = io.BytesIO()
        Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
        images.append(buffer.getvalue())
    return images


def make_zip(images: list[bytes], path: Path) -> None:
    """Zip the images (deflate, as most tools write archives)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for index, data in enumerate(images):
            archive.writestr(f"images/{index:05}.jpg", data)


def baseline(zip_path: Path, out_dir: Path) -> float:
    """Seconds to read each member, verify it, decode it fully and write it out with Pillow."""
    out_dir.mkdir(parents=True)
    start = time.perf_counter()
    with zipfile.ZipFile(zip_path) as archive:
        for member in archive.infolist():
            data = archive.read(member)
            with Image.open(io.BytesIO(data)) as image:
                image.verify()
            with Image.open(io.BytesIO(data)) as image:
                image.load()
            (out_dir / member.filename.replace("/", "_")).write_bytes(data)
    return time.perf_counter() - start


def polytag(zip_path: Path, run: int) -> tuple[float, dict[str, int]]:
    """Seconds to ingest the zip into a new project through the upload service."""
    with new_session() as session:
        project = project_service.create(session=session, name=f"bench {run}")
        with zip_path.open("rb") as stream:
            start = time.perf_counter()
            report = asset_service.ingest_uploads(
                session=session, storage=get_blob_store(), project=project,
                uploads=[Upload(zip_path.name, stream)],
            )
            elapsed = time.perf_counter() - start
    counts = {status: report.count(status) for status in ("created", "duplicate", "rejected")}
    return elapsed, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs of each side")
    args = parser.parse_args()
    try:
        upgrade()
        images = make_jpegs(args.images, (args.width, args.height))
        zip_path = _DATA_DIR / "images.zip"
        make_zip(images, zip_path)
        baseline_times, polytag_times = [], []
        baseline_cpu, polytag_cpu = [], []
        baseline_sys, polytag_sys = [], []
        counts: dict[str, int] = {}
        # Alternate the two sides so that neither gets a warmer machine.
        for run in range(args.repeat):
            cpu, sys_cpu = cpu_seconds(), system_cpu_seconds()
            baseline_times.append(baseline(zip_path, _DATA_DIR / f"baseline-{run}"))
            baseline_cpu.append(cpu_seconds() - cpu)
            baseline_sys.append(system_cpu_seconds() - sys_cpu)
            cpu, sys_cpu = cpu_seconds(), system_cpu_seconds()
            elapsed, counts = polytag(zip_path, run)
            polytag_cpu.append(cpu_seconds() - cpu)
            polytag_sys.append(system_cpu_seconds() - sys_cpu)
            polytag_times.append(elapsed)
            if counts["created"] != args.images:
                raise RuntimeError(f"expected {args.images} new images, got {counts}")
        baseline_rate = args.images / min(baseline_times)
        polytag_rate = args.images / min(polytag_times)
        print(json.dumps({
            "benchmark": "ingest",
            "images": args.images,
            "size": f"{args.width}x{args.height}",
            "zip_bytes": zip_path.stat().st_size,
            "repeat": args.repeat,
            "cpu_count": os.cpu_count(),
            "baseline_images_per_s": round(baseline_rate, 1),
            "polytag_images_per_s": round(polytag_rate, 1),
            "ratio": round(polytag_rate / baseline_rate, 3),
            "target_ratio": 0.8,
            # CPU per image (all threads): Polytag also hashes, thumbnails, fsyncs and inserts,
            # and spreads that over the cores; the baseline runs on one.
            "baseline_cpu_ms_per_image": round(min(baseline_cpu) * 1000 / args.images, 2),
            "polytag_cpu_ms_per_image": round(min(polytag_cpu) * 1000 / args.images, 2),
            # Kernel part of the above: creating files costs much more on some filesystems
            # (ext4 without a journal skips recently deleted inodes one by one).
            "baseline_system_cpu_ms_per_image": round(min(baseline_sys) * 1000 / args.images, 2),
            "polytag_system_cpu_ms_per_image": round(min(polytag_sys) * 1000 / args.images, 2),
            "load_average": round(os.getloadavg()[0], 1),
            "polytag_result": counts,
        }, indent=2))
    finally:
        shutil.rmtree(_DATA_DIR, ignore_errors=True)


if __name__ == "__main__":
    main()
