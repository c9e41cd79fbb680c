"""Convert corpus layers with artifactd and with the reference, side by side.

    python benchmarks/convert_bench.py [--corpus DIR] [--ref BIN] [--runs N]

For every layer of the corpus ``debian`` and ``pyapp`` images (each distinct
layer once), both builders run at the same compression level and chunk size,
alternating, in this one process. Printed per layer and in total: MB/s of
uncompressed input, output size, and artifactd's time as a fraction of the
reference's. artifactd is timed around the whole build (reading the source,
decompressing, verifying digests, writing the blob); the reference reports its
own time for ``Build`` plus writing, after reading its input untimed, so the
comparison favours the reference. Peak memory (max RSS) of a child process
running the artifactd build is printed as well.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from artifactd.formats.estargz import BuildOptions, build_estargz
from artifactd.oci.layout import Layout, blob_path
from artifactd.oci.model import Manifest

IMAGES = [("debian", "bookworm"), ("pyapp", "latest")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    parser.add_argument(
        "--corpus",
        type=Path,
        default=Path(os.environ.get("OCI_CORPUS_DIR", cache / "oci-corpus")),
    )
    parser.add_argument(
        "--ref",
        default=os.environ.get(
            "ESTARGZ_REF", str(cache / "estargz-ref" / "estargz-ref")
        ),
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--level", type=int, default=9)
    parser.add_argument("--chunk-size", type=int, default=4 << 20)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(Path(args.child[0]), Path(args.child[1]), args)

    layers = _layers(args.corpus)
    print(
        f"cpus={os.cpu_count()} level={args.level} chunk={args.chunk_size} "
        f"runs={args.runs} (median)"
    )
    header = (
        f"{'layer':<14}{'tar MB':>8}{'ours s':>8}{'ref s':>8}{'ratio':>7}"
        f"{'ours MB/s':>10}{'ref MB/s':>9}{'ours MB':>9}{'ref MB':>9}"
        f"{'size':>8}{'RSS MB':>8}"
    )
    print(header)
    totals = {"ours": 0.0, "ref": 0.0, "ours_size": 0, "ref_size": 0, "tar": 0}
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in layers:
            row = _measure(Path(tmp), path, args)
            for key in totals:
                totals[key] += row[key]
            _print_row(name, row)
        _print_row("total", {**totals, "rss": 0})
    return 0


def _layers(corpus: Path) -> list[tuple[str, Path]]:
    seen, result = set(), []
    for image, tag in IMAGES:
        layout = Layout.open(corpus / image)
        manifest = Manifest.from_bytes(layout.read_blob(layout.resolve(tag=tag)))
        for number, layer in enumerate(manifest.layers, 1):
            if layer.digest in seen:
                continue
            seen.add(layer.digest)
            result.append((f"{image}#{number}", blob_path(layout.root, layer.digest)))
    return result


def _measure(tmp: Path, path: Path, args: argparse.Namespace) -> dict:
    ours, ref = [], []
    ours_size = ref_size = tar_bytes = 0
    for _ in range(args.runs):
        out = tmp / "ours.esgz"
        started = time.perf_counter()
        with path.open("rb") as source, out.open("wb") as sink:
            result = build_estargz(
                source, sink, BuildOptions(level=args.level, chunk_size=args.chunk_size)
            )
        ours.append(time.perf_counter() - started)
        ours_size = result.size

        proc = subprocess.run(
            [
                args.ref,
                "build",
                str(path),
                str(tmp / "ref.esgz"),
                "--level",
                str(args.level),
                "--chunk-size",
                str(args.chunk_size),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        report = json.loads(proc.stdout)
        ref.append(report["wall_seconds"])
        ref_size = report["blob_size"]
        tar_bytes = report["input_tar_bytes"]
    rss = _child_rss(path, args)
    return {
        "ours": statistics.median(ours),
        "ref": statistics.median(ref),
        "ours_size": ours_size,
        "ref_size": ref_size,
        "tar": tar_bytes,
        "rss": rss,
    }


def _child_rss(path: Path, args: argparse.Namespace) -> float:
    """Peak RSS in MB of a fresh process converting the layer."""
    with tempfile.NamedTemporaryFile() as out:
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--level",
                str(args.level),
                "--chunk-size",
                str(args.chunk_size),
                "--child",
                str(path),
                out.name,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    return float(proc.stdout.strip())


def _child(path: Path, out: Path, args: argparse.Namespace) -> int:
    with path.open("rb") as source, out.open("wb") as sink:
        build_estargz(
            source, sink, BuildOptions(level=args.level, chunk_size=args.chunk_size)
        )
    # VmHWM, not ru_maxrss: the latter keeps the forking parent's size across exec.
    with open("/proc/self/status") as status:
        peak = next(line for line in status if line.startswith("VmHWM:"))
    print(int(peak.split()[1]) / 1024)
    return 0


def _print_row(name: str, row: dict) -> None:
    mb = row["tar"] / 1e6
    ratio = row["ours"] / row["ref"] if row["ref"] else 0
    size = row["ours_size"] / row["ref_size"] - 1 if row["ref_size"] else 0
    rss = f"{row['rss']:8.0f}" if row["rss"] else f"{'':>8}"
    print(
        f"{name:<14}{mb:8.1f}{row['ours']:8.2f}{row['ref']:8.2f}{ratio:7.2f}"
        f"{mb / row['ours']:10.1f}{mb / row['ref']:9.1f}"
        f"{row['ours_size'] / 1e6:9.2f}{row['ref_size'] / 1e6:9.2f}"
        f"{size:+8.1%}{rss}"
    )


if __name__ == "__main__":
    sys.exit(main())
