"""The artifactd command line as a user runs it."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def run_cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "artifactd.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        **kwargs,
    )


def test_convert_prints_layer_lines_when_not_on_a_terminal(corpus_dir, tmp_path):
    proc = run_cli(
        "convert",
        f"oci:{corpus_dir / 'multiarch'}:latest",
        f"oci:{tmp_path / 'out'}:fast",
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 2 and all(" converted: " in line for line in lines)
    assert proc.stdout.startswith(f"oci:{tmp_path / 'out'}:fast sha256:")


def test_convert_draws_a_progress_bar_on_a_terminal(corpus_dir, tmp_path):
    primary, secondary = pty.openpty()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "artifactd.cli",
            "convert",
            f"oci:{corpus_dir / 'edge'}:latest",
            f"oci:{tmp_path / 'out'}",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=secondary,
        cwd=ROOT,
        timeout=300,
    )
    os.close(secondary)
    shown = b""
    while True:
        try:
            data = os.read(primary, 65536)
        except OSError:
            break
        if not data:
            break
        shown += data
    os.close(primary)
    assert proc.returncode == 0
    assert b"\r[" in shown and b"100.0%" in shown and b"layers 4/4" in shown


def test_inspect_summarises_the_toc(corpus_dir, tmp_path):
    out = tmp_path / "out"
    assert (
        run_cli(
            "convert", f"oci:{corpus_dir / 'edge'}:latest", f"oci:{out}:e"
        ).returncode
        == 0
    )
    proc = run_cli("inspect", "--json", f"oci:{out}:e")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    tocs = [layer["toc"] for layer in report["layers"]]
    assert len(tocs) == 4
    assert all(toc["noPrefetchLandmark"] for toc in tocs)
    assert sum(toc["types"].get("chunk", 0) for toc in tocs) >= 7  # 20+12 MiB files
    human = run_cli("inspect", f"oci:{out}:e").stdout
    assert "eStargz TOC sha256:" in human


def test_errors_are_one_clear_line(tmp_path):
    proc = run_cli("convert", f"oci:{tmp_path / 'missing'}:x", f"oci:{tmp_path / 'o'}")
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"artifactd convert: {tmp_path / 'missing'} is not an OCI image layout"
    )
    assert not Path(tmp_path / "o").exists()
