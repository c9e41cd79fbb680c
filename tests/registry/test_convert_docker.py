"""``artifactd convert`` with ``docker://`` references on both sides."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from artifactd.oci import mediatypes as mt
from artifactd.oci.layout import Layout
from artifactd.oci.reference import parse_registry_reference
from artifactd.registry.client import RegistryClient
from tests.registry.conftest import LiveRegistry

pytestmark = pytest.mark.corpus


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
    env = dict(
        os.environ,
        ARTIFACTD_REGISTRY_USERNAME=embedded.user,
        ARTIFACTD_REGISTRY_PASSWORD=embedded.password,
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "artifactd.cli",
            "convert",
            "--progress",
            "none",
            source,
            f"docker://{embedded.host}/team/edge:latest_accelerated",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
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
