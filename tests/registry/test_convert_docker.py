"""``artifactd convert`` with ``docker://`` references on both sides, and
lazy reads of a converted layer straight from the registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from artifactd.formats.estargz.reader import EStargzReader
from artifactd.formats.image import convert_image
from artifactd.oci import mediatypes as mt
from artifactd.oci.layout import Layout
from artifactd.oci.reference import parse_registry_reference
from artifactd.registry.client import (
    RangeReader,
    RegistryClient,
    RegistryImageSink,
    RegistryImageSource,
)
from tests.registry.conftest import LiveRegistry
from tests.registry.flaky import FlakyProxy

pytestmark = pytest.mark.corpus


def run_convert(
    registry: LiveRegistry, source: str, destination: str
) -> subprocess.CompletedProcess[str]:
    """``artifactd convert`` as a user runs it, with the registry's credentials."""
    env = dict(
        os.environ,
        ARTIFACTD_REGISTRY_USERNAME=registry.user,
        ARTIFACTD_REGISTRY_PASSWORD=registry.password,
    )
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "artifactd.cli",
            "convert",
            "--progress",
            "none",
            source,
            destination,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_convert_registry_to_registry(
    embedded: LiveRegistry, corpus_dir: Path, tmp_path: Path
) -> None:
    layout = Layout.open(corpus_dir / "edge")
    source = f"docker://{embedded.host}/team/edge:latest"
    with RegistryClient(
        embedded.host, username=embedded.user, password=embedded.password
    ) as client:
        client.push_image(
            layout, layout.resolve(tag="latest"), parse_registry_reference(source)
        )
    result = run_convert(
        embedded, source, f"docker://{embedded.host}/team/edge:latest_accelerated"
    )
    assert result.returncode == 0, result.stderr
    with RegistryClient(
        embedded.host, username=embedded.user, password=embedded.password
    ) as client:
        data, media_type, _ = client.get_manifest("team/edge", "latest_accelerated")
        manifest = json.loads(data)
        assert media_type == mt.OCI_MANIFEST
        assert all(
            mt.ANNOTATION_TOC_DIGEST in d.get("annotations", {})
            for d in manifest["layers"]
            if d["size"] > 0
        )
        # Every converted blob comes back whole and verified.
        pulled = client.pull_image(
            parse_registry_reference(
                f"docker://{embedded.host}/team/edge:latest_accelerated"
            ),
            tmp_path / "out",
        )
    assert (
        Layout.open(tmp_path / "out").resolve(tag="latest_accelerated").digest
        == pulled.digest
    )


class CountingRangeReader(RangeReader):
    """A :class:`RangeReader` that counts the bytes it fetched."""

    fetched = 0

    def read_at(self, offset: int, size: int) -> bytes:
        data = super().read_at(offset, size)
        self.fetched += len(data)
        return data


def _source_files(layout: Layout, layer: dict) -> dict[str, bytes]:
    """Regular files of a source layer, read with Python's own tarfile."""
    path = layout.root / "blobs" / "sha256" / layer["digest"].split(":")[1]
    with tarfile.open(path, "r:*") as archive:
        return {
            member.name.removeprefix("./"): archive.extractfile(member).read()
            for member in archive
            if member.isfile()
        }


def test_one_file_is_read_from_a_remote_layer_without_fetching_it(
    embedded: LiveRegistry, corpus_dir: Path
) -> None:
    layout = Layout.open(corpus_dir / "edge")
    source_desc = layout.resolve(tag="latest")
    repo = "team/edge"
    with RegistryClient(
        embedded.host, username=embedded.user, password=embedded.password
    ) as client:
        ref = parse_registry_reference(f"docker://{embedded.host}/{repo}:latest")
        client.push_image(layout, source_desc, ref)
        convert_image(
            RegistryImageSource(client, repo),
            RegistryImageSink(client, repo),
            "latest",
            "latest_accelerated",
        )
        data, _, _ = client.get_manifest(repo, "latest_accelerated")
        layers = json.loads(data)["layers"]
        source_layers = json.loads(layout.read_blob(layout.resolve(tag="latest")))[
            "layers"
        ]
        index = max(range(len(layers)), key=lambda i: layers[i]["size"])
        remote = layers[index]
        files = _source_files(layout, source_layers[index])
        # The smallest non-empty file and the one that just spans two chunks.
        small = min((n for n in files if files[n]), key=lambda n: len(files[n]))
        spanning = next(n for n in files if len(files[n]) == (4 << 20) + 1)

        blob = CountingRangeReader(client, repo, remote["digest"], remote["size"])
        reader = EStargzReader(blob, remote["annotations"][mt.ANNOTATION_TOC_DIGEST])
        assert reader.read_file(small) == files[small]
        assert blob.fetched < remote["size"] // 20, "only the TOC and one chunk"
        assert reader.read_file(spanning) == files[spanning]
        assert reader.read_file(spanning, offset=4 << 20) == files[spanning][-1:]


def test_same_registry_conversion_mounts_blobs_it_already_holds(
    embedded: LiveRegistry, corpus_dir: Path
) -> None:
    """An accelerated image copied to another repository of the same registry
    moves no layer bytes: each layer is mounted from the source repository."""
    layout = Layout.open(corpus_dir / "edge")
    with RegistryClient(
        embedded.host, username=embedded.user, password=embedded.password
    ) as client:
        ref = parse_registry_reference(f"docker://{embedded.host}/team/edge:latest")
        client.push_image(layout, layout.resolve(tag="latest"), ref)
        convert_image(
            RegistryImageSource(client, "team/edge"),
            RegistryImageSink(client, "team/edge"),
            "latest",
            "fast",
        )
    with FlakyProxy(embedded.url) as proxy:
        result = run_convert(
            embedded,
            f"docker://{proxy.host}/team/edge:fast",
            f"docker://{proxy.host}/other/edge:fast",
        )
    assert result.returncode == 0, result.stderr
    posts = [path for method, path, _ in proxy.seen if method == "POST"]
    layer_gets = [
        path
        for method, path, _ in proxy.seen
        if method == "GET" and path.startswith("/v2/team/edge/blobs/")
    ]
    assert posts and all("mount=" in path for path in posts[:-1])
    assert not any(method == "PATCH" for method, _, _ in proxy.seen)
    # Only the config was read; no layer came down to go up again.
    assert len(layer_gets) == 1
