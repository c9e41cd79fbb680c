"""skopeo, a real client, against the embedded registry: the corpus goes in and
comes back out with identical digests."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import SHARED, require
from tests.registry.conftest import LiveRegistry

pytestmark = [pytest.mark.corpus, pytest.mark.slow]


def run(*args: str) -> str:
    result = subprocess.run(
        args, check=True, capture_output=True, text=True, timeout=300
    )
    return result.stdout


def layout_tags(layout: Path) -> dict[str, dict]:
    index = json.loads((layout / "index.json").read_text())
    return {
        d["annotations"]["org.opencontainers.image.ref.name"]: d
        for d in index["manifests"]
    }


def blob_set(layout: Path) -> set[str]:
    return {p.name for p in (layout / "blobs" / "sha256").iterdir()}


def test_corpus_round_trip_through_embedded_registry(
    embedded: LiveRegistry, corpus_dir: Path, skopeo: str, tmp_path: Path
) -> None:
    push_sh = SHARED / "corpus" / "push.sh"
    require(push_sh.is_file(), "shared/corpus/push.sh")
    run(
        "bash",
        str(push_sh),
        str(corpus_dir),
        embedded.host,
        "corpus",
        "--",
        "--dest-creds",
        embedded.creds,
    )
    creds = ["--creds", embedded.creds, "--tls-verify=false"]
    for layout in sorted(
        p for p in corpus_dir.iterdir() if (p / "oci-layout").is_file()
    ):
        name = f"corpus/{layout.name}"
        listed = json.loads(
            run(skopeo, "list-tags", *creds, f"docker://{embedded.host}/{name}")
        )
        assert sorted(listed["Tags"]) == sorted(layout_tags(layout))
        for tag, desc in layout_tags(layout).items():
            raw = run(
                skopeo,
                "inspect",
                "--raw",
                *creds,
                f"docker://{embedded.host}/{name}:{tag}",
            )
            assert (
                raw.encode()
                == (layout / "blobs" / "sha256" / desc["digest"][7:]).read_bytes()
            )
            if desc["mediaType"].endswith("index.v1+json"):
                continue
            inspected = json.loads(
                run(skopeo, "inspect", *creds, f"docker://{embedded.host}/{name}:{tag}")
            )
            assert inspected["Digest"] == desc["digest"]
            out = tmp_path / f"{layout.name}-{tag}"
            transport = "oci" if "oci" in desc["mediaType"] else "dir"
            dest = f"oci:{out}:{tag}" if transport == "oci" else f"dir:{out}"
            run(
                skopeo,
                "copy",
                "--quiet",
                "--preserve-digests",
                "--src-tls-verify=false",
                "--src-creds",
                embedded.creds,
                f"docker://{embedded.host}/{name}:{tag}",
                dest,
            )
            if transport == "oci":
                assert layout_tags(out)[tag]["digest"] == desc["digest"]
                assert blob_set(out) <= blob_set(layout)
            else:
                manifest = (out / "manifest.json").read_bytes()
                assert (
                    manifest
                    == (layout / "blobs" / "sha256" / desc["digest"][7:]).read_bytes()
                )


def test_multiarch_index_copies_with_all(
    embedded: LiveRegistry, corpus_dir: Path, skopeo: str, tmp_path: Path
) -> None:
    source = corpus_dir / "multiarch"
    dest = f"docker://{embedded.host}/corpus/multiarch:latest"
    run(
        skopeo,
        "copy",
        "--quiet",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
        "--dest-creds",
        embedded.creds,
        f"oci:{source}:latest",
        dest,
    )
    out = tmp_path / "multiarch"
    run(
        skopeo,
        "copy",
        "--quiet",
        "--all",
        "--preserve-digests",
        "--src-tls-verify=false",
        "--src-creds",
        embedded.creds,
        dest,
        f"oci:{out}:latest",
    )
    assert (
        layout_tags(out)["latest"]["digest"] == layout_tags(source)["latest"]["digest"]
    )
    assert blob_set(out) == blob_set(source)


def test_unauthenticated_skopeo_push_is_refused(
    embedded: LiveRegistry, corpus_dir: Path, skopeo: str
) -> None:
    result = subprocess.run(
        [
            skopeo,
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            f"oci:{corpus_dir / 'edge'}:latest",
            f"docker://{embedded.host}/corpus/edge:latest",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "401" in result.stderr and "denied" in result.stderr
    assert list((embedded.storage_root / "blobs").rglob("*/*/*")) == []
