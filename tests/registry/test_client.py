"""The registry client against CNCF Distribution (htpasswd) and the embedded
registry (token auth): images and blobs both ways, verified."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import httpx
import pytest

from artifactd.errors import DigestError, DistributionError
from artifactd.oci import mediatypes as mt
from artifactd.oci.layout import Layout
from artifactd.oci.model import Descriptor
from artifactd.oci.reference import parse_registry_reference
from artifactd.registry.client import (
    RangeReader,
    RegistryClient,
    RegistryImageSink,
    RegistryImageSource,
)
from tests.registry.conftest import (
    KEY_ID,
    KEY_SECRET,
    LiveRegistry,
    _ServerThread,
    start_embedded,
)


def blob_desc(data: bytes) -> Descriptor:
    return Descriptor(
        mt.OCI_LAYER_GZIP, "sha256:" + hashlib.sha256(data).hexdigest(), len(data)
    )


def client_for(registry: LiveRegistry, **kwargs) -> RegistryClient:
    return RegistryClient(
        registry.host, username=registry.user, password=registry.password, **kwargs
    )


@pytest.fixture(params=["distribution", "embedded"])
def registry(request) -> LiveRegistry:
    return request.getfixturevalue(request.param)


@pytest.mark.corpus
def test_push_and_pull_corpus_image(
    registry: LiveRegistry, corpus_dir: Path, tmp_path: Path
) -> None:
    layout = Layout.open(corpus_dir / "edge")
    desc = layout.resolve(tag="latest")
    ref = parse_registry_reference(f"docker://{registry.host}/team/edge:v1")
    with client_for(registry) as client:
        assert client.push_image(layout, desc, ref) == desc.digest
        assert client.list_tags("team/edge") == ["v1"]
        pulled = client.pull_image(ref, tmp_path / "out")
    assert pulled.digest == desc.digest
    out = Layout.open(tmp_path / "out")
    assert out.resolve(tag="v1").digest == desc.digest
    assert set(out.iter_blobs()) == set(layout.iter_blobs())


@pytest.mark.corpus
def test_push_and_pull_multiarch_index(
    registry: LiveRegistry, corpus_dir: Path, tmp_path: Path
) -> None:
    layout = Layout.open(corpus_dir / "multiarch")
    desc = layout.resolve(tag="latest")
    ref = parse_registry_reference(f"docker://{registry.host}/team/multi:latest")
    with client_for(registry) as client:
        client.push_image(layout, desc, ref)
        client.pull_image(ref, tmp_path / "out")
    assert set(Layout.open(tmp_path / "out").iter_blobs()) == set(layout.iter_blobs())


def test_chunked_stream_upload_and_range_reads(registry: LiveRegistry) -> None:
    data = os.urandom((3 << 20) + 12345)
    desc = blob_desc(data)
    with client_for(registry, chunk_size=1 << 20) as client:
        sink = RegistryImageSink(client, "team/blobs")
        assert not sink.has_blob(desc.digest)
        sink.put_blob_stream(io.BytesIO(data), desc)
        assert sink.has_blob(desc.digest)
        reader = RangeReader(client, "team/blobs", desc.digest)
        assert reader.size == len(data)
        assert reader.read_at(0, 10) == data[:10]
        assert reader.read_at(2_000_000, 70_000) == data[2_000_000:2_070_000]
        assert reader.read_at(len(data) - 5, 100) == data[-5:]
        source = RegistryImageSource(client, "team/blobs")
        with source.open_blob(desc) as stream:
            assert stream.read() == data


def test_stream_whose_bytes_do_not_match_is_not_stored(registry: LiveRegistry) -> None:
    data = os.urandom(100_000)
    desc = blob_desc(b"something else" + data[14:])
    with client_for(registry, chunk_size=32 << 10) as client:
        with pytest.raises(DigestError):
            client.push_blob_stream("team/blobs", io.BytesIO(data), desc)
        assert client.blob_size("team/blobs", desc.digest) is None


def test_download_is_verified(embedded: LiveRegistry) -> None:
    data = os.urandom(50_000)
    desc = blob_desc(data)
    with client_for(embedded) as client:
        client.push_blob_bytes("team/blobs", data, desc)
        # Corrupt the stored blob behind the registry's back.
        stored = next(
            p for p in (embedded.storage_root / "blobs").rglob(desc.digest[7:])
        )
        stored.write_bytes(b"x" + data[1:])
        with pytest.raises(DigestError), client.open_blob("team/blobs", desc) as stream:
            stream.read()


def test_file_upload_mount_and_manifest(registry: LiveRegistry, tmp_path: Path) -> None:
    layer = os.urandom(200_000)
    config = b'{"rootfs":{"type":"layers","diff_ids":[]}}'
    path = tmp_path / "layer"
    path.write_bytes(layer)
    layer_desc, config_desc = blob_desc(layer), blob_desc(config)
    config_desc.media_type = mt.OCI_CONFIG
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": config_desc.to_json(),
            "layers": [layer_desc.to_json()],
        }
    ).encode()
    with client_for(registry) as client:
        client.push_blob_file("team/one", path, layer_desc)
        client.push_blob_bytes("team/one", config, config_desc)
        sink = RegistryImageSink(client, "team/two", mount_from=("team/one",))
        assert sink.mount_blob(layer_desc) and sink.mount_blob(config_desc)
        digest = sink.put_manifest("v1", manifest, mt.OCI_MANIFEST)
        assert RegistryImageSource(client, "team/two").get_manifest("v1") == (
            manifest,
            mt.OCI_MANIFEST,
        )
        assert client.get_manifest("team/two", digest)[2] == digest


def test_wrong_password_is_a_clear_error(registry: LiveRegistry) -> None:
    with RegistryClient(
        registry.host, username=registry.user, password="nope", retries=0
    ) as client:
        with pytest.raises(DistributionError) as info:
            client.list_tags("team/app")
    assert info.value.status == 401


@pytest.fixture
def basic_embedded(tmp_path: Path):
    """The embedded registry with ``auth_mode = "basic"``: no token flow."""
    service, app = start_embedded(tmp_path / "basic", auth_mode="basic")
    with _ServerThread(app, service.settings.port):
        yield LiveRegistry(
            f"127.0.0.1:{service.settings.port}", service, KEY_ID, KEY_SECRET
        )


def test_basic_auth_mode_challenges_for_basic_and_serves_the_client(
    basic_embedded: LiveRegistry,
) -> None:
    base = httpx.get(f"{basic_embedded.url}/v2/")
    assert base.status_code == 401
    assert base.headers["www-authenticate"].startswith("Basic realm=")
    wrong = httpx.get(f"{basic_embedded.url}/v2/", auth=(KEY_ID, "wrong"))
    assert wrong.status_code == 401
    data = os.urandom(5000)
    with client_for(basic_embedded) as client:
        client.push_blob_bytes("team/app", data, blob_desc(data))
        with client.open_blob("team/app", blob_desc(data)) as stream:
            assert stream.read() == data
    with RegistryClient(basic_embedded.host) as anonymous:
        with pytest.raises(DistributionError) as info:
            anonymous.push_blob_bytes("team/app", b"x", blob_desc(b"x"))
        assert info.value.code == "UNAUTHORIZED"
