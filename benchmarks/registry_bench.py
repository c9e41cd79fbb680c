"""Push and pull throughput: the embedded registry beside CNCF Distribution.

    .venv/bin/python benchmarks/registry_bench.py [--rounds N] [--auth]
        [--images debian,pyapp] [--json FILE]

Starts Debian's ``docker-registry`` and ``artifactd serve`` on loopback at
free ports, each with its own temporary storage, then for each corpus image
and round: ``skopeo copy`` from the OCI layout into a fresh repository of
each registry (a full push: the new repository has none of the blobs), and
back out into a fresh OCI layout (a full pull). Both registries are started afresh
for every round (so skopeo's blob info cache cannot turn a push into a
mount), and which goes first alternates between rounds.
Throughput is the image's blob bytes over the median wall time. Without
``--auth`` both registries run with auth off; with it, the embedded one
uses its token flow and Distribution htpasswd (bcrypt on every request).
The corpus comes from ``$OCI_CORPUS_DIR`` (default ``~/.cache/oci-corpus``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
KEY_ID, KEY_SECRET = "LTAIbenchmark0000001", "benchmark-secret-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not come up in {timeout}s")


def start_distribution(
    work: Path, auth: bool
) -> tuple[subprocess.Popen, str, list[str]]:
    port = free_port()
    config = f"""version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {work}/distribution
http:
  addr: 127.0.0.1:{port}
"""
    creds: list[str] = []
    if auth:
        line = subprocess.run(
            ["htpasswd", "-Bbn", "bench", "bench-password"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        (work / "htpasswd").write_text(line + "\n")
        config += f"auth:\n  htpasswd:\n    realm: bench\n    path: {work}/htpasswd\n"
        creds = ["bench:bench-password"]
    (work / "config.yml").write_text(config)
    process = subprocess.Popen(
        ["docker-registry", "serve", str(work / "config.yml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(f"http://127.0.0.1:{port}/v2/")
    return process, f"127.0.0.1:{port}", creds


def start_embedded(work: Path, auth: bool) -> tuple[subprocess.Popen, str, list[str]]:
    port = free_port()
    env = dict(
        os.environ,
        ARTIFACTD_AUTH_MODE="token" if auth else "none",
        ARTIFACTD_BOOTSTRAP_ACCESS_KEY_ID=KEY_ID,
        ARTIFACTD_BOOTSTRAP_ACCESS_KEY_SECRET=KEY_SECRET,
        ARTIFACTD_LOG_LEVEL="warning",
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "artifactd.cli",
            "serve",
            "--data-dir",
            str(work / "embedded"),
            "--port",
            str(port),
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(f"http://127.0.0.1:{port}/healthz")
    return process, f"127.0.0.1:{port}", [f"{KEY_ID}:{KEY_SECRET}"] if auth else []


def image_bytes(layout: Path) -> int:
    return sum(p.stat().st_size for p in (layout / "blobs" / "sha256").iterdir())


def layout_tag(layout: Path) -> str:
    index = json.loads((layout / "index.json").read_text())
    return index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"]


def timed(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - started


def push(layout: Path, host: str, repo: str, creds: list[str]) -> float:
    tag = layout_tag(layout)
    args = [
        "skopeo",
        "copy",
        "--quiet",
        "--preserve-digests",
        "--dest-tls-verify=false",
    ]
    if creds:
        args += ["--dest-creds", creds[0]]
    return timed(args + [f"oci:{layout}:{tag}", f"docker://{host}/{repo}:{tag}"])


def pull(layout: Path, host: str, repo: str, creds: list[str], out: Path) -> float:
    tag = layout_tag(layout)
    args = ["skopeo", "copy", "--quiet", "--preserve-digests", "--src-tls-verify=false"]
    if creds:
        args += ["--src-creds", creds[0]]
    elapsed = timed(args + [f"docker://{host}/{repo}:{tag}", f"oci:{out}:{tag}"])
    shutil.rmtree(out)
    return elapsed


def one_round(
    work: Path, layout: Path, auth: bool, first: int
) -> dict[tuple[str, str], float]:
    """Push then pull ``layout`` with each registry freshly started.

    Fresh registries at new ports also keep skopeo's blob info cache from
    turning a push into a cross-repository mount of an earlier round's blobs.
    """
    (work / "d").mkdir()
    (work / "e").mkdir()
    dist, dist_host, dist_creds = start_distribution(work / "d", auth)
    emb, emb_host, emb_creds = start_embedded(work / "e", auth)
    targets = {
        "docker-registry": (dist_host, dist_creds),
        "artifactd": (emb_host, emb_creds),
    }
    order = list(targets) if first % 2 == 0 else list(targets)[::-1]
    times = {}
    repo = f"bench/{layout.name}"
    try:
        for name in order:
            host, creds = targets[name]
            times[(name, "push")] = push(layout, host, repo, creds)
        for name in order:
            host, creds = targets[name]
            out = work / f"pull-{name}"
            times[(name, "pull")] = pull(layout, host, repo, creds, out)
    finally:
        for process in (dist, emb):
            process.terminate()
            process.wait(10)
    return times


def run(corpus: Path, images: list[str], rounds: int, auth: bool) -> list[dict]:
    results = []
    with tempfile.TemporaryDirectory(prefix="registry-bench-") as tmp:
        for image in images:
            layout = corpus / image
            size = image_bytes(layout)
            times: dict[tuple[str, str], list[float]] = {}
            for number in range(rounds):
                work = Path(tmp) / f"{image}-{number}"
                work.mkdir()
                for key, value in one_round(work, layout, auth, number).items():
                    times.setdefault(key, []).append(value)
                shutil.rmtree(work)
            for (name, direction), values in sorted(times.items()):
                median = statistics.median(values)
                results.append(
                    {
                        "image": image,
                        "registry": name,
                        "direction": direction,
                        "bytes": size,
                        "seconds_median": round(median, 3),
                        "seconds_all": [round(v, 3) for v in values],
                        "mib_per_s": round(size / median / (1 << 20), 1),
                    }
                )
    return results


def report(results: list[dict], auth: bool) -> str:
    lines = [
        f"auth: {'token (artifactd) / htpasswd (docker-registry)' if auth else 'off'}",
        f"{'image':8} {'dir':5} {'docker-registry':>18} {'artifactd':>18} {'ratio':>6}",
    ]
    by_key = {(r["image"], r["direction"], r["registry"]): r for r in results}
    for image in dict.fromkeys(r["image"] for r in results):
        for direction in ("push", "pull"):
            ref = by_key[(image, direction, "docker-registry")]
            ours = by_key[(image, direction, "artifactd")]
            ratio = ours["mib_per_s"] / ref["mib_per_s"]
            lines.append(
                f"{image:8} {direction:5} "
                f"{ref['mib_per_s']:>7.1f} MiB/s {ref['seconds_median']:>5.2f}s "
                f"{ours['mib_per_s']:>7.1f} MiB/s {ours['seconds_median']:>5.2f}s "
                f"{ratio:>5.0%}"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", default="debian,pyapp")
    parser.add_argument("--auth", action="store_true")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    if not 1 <= args.rounds <= 20:
        parser.error("--rounds must be 1-20")
    for tool in ("skopeo", "docker-registry", "htpasswd"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not installed (scripts/test.sh installs it)")
    corpus = Path(
        os.environ.get("OCI_CORPUS_DIR")
        or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "oci-corpus"
    )
    images = [name for name in args.images.split(",") if name]
    results = run(corpus, images, args.rounds, args.auth)
    print(report(results, args.auth))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
