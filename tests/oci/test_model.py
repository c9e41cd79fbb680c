"""The OCI model: digests, references, documents and layouts."""

from __future__ import annotations

import io
import json

import pytest

from artifactd.errors import DigestError, InvalidReferenceError, LayoutError, OCIError
from artifactd.oci import mediatypes as mt
from artifactd.oci.digest import VerifyingReader, sha256_digest, validate_digest
from artifactd.oci.layout import Layout, LayoutWriter, init_layout
from artifactd.oci.model import (
    Descriptor,
    Index,
    Manifest,
    Platform,
    parse_manifest_or_index,
)
from artifactd.oci.reference import (
    parse_layout_reference,
    parse_reference,
    parse_registry_reference,
    validate_repository_name,
)

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    "bad",
    ["", "sha256:abc", "sha256:" + "A" * 64, "md5:" + "a" * 32, "sha256" + "a" * 64],
)
def test_malformed_digests_are_refused(bad):
    with pytest.raises(DigestError):
        validate_digest(bad)


def test_verifying_reader_catches_corruption():
    data = b"layer bytes"
    good = VerifyingReader(io.BytesIO(data), sha256_digest(data), len(data))
    assert good.read() == data
    good.read()  # end of stream: verified without error
    bad = VerifyingReader(io.BytesIO(data + b"!"), sha256_digest(data), len(data))
    with pytest.raises(DigestError, match="larger"):
        bad.read()


@pytest.mark.parametrize(
    ("text", "host", "repo", "tag", "digest"),
    [
        ("docker://127.0.0.1:5000/ns/app:v1", "127.0.0.1:5000", "ns/app", "v1", ""),
        ("docker://localhost/app", "localhost", "app", "latest", ""),
        ("docker://r.example/a/b@" + DIGEST, "r.example", "a/b", "", DIGEST),
        ("docker://[::1]:5000/x:y", "[::1]:5000", "x", "y", ""),
    ],
)
def test_registry_references(text, host, repo, tag, digest):
    ref = parse_registry_reference(text)
    assert (ref.host, ref.repository, ref.tag, ref.digest) == (host, repo, tag, digest)


@pytest.mark.parametrize(
    "bad",
    [
        "docker://host",
        "docker://host/UPPER:tag",
        "docker://host/a//b",
        "docker://h/a:-t",
    ],
)
def test_bad_registry_references_are_refused(bad):
    with pytest.raises(InvalidReferenceError):
        parse_registry_reference(bad)


def test_layout_references():
    assert parse_layout_reference("oci:/tmp/x:v1").tag == "v1"
    assert parse_layout_reference("oci:/tmp/x").path == "/tmp/x"
    assert parse_layout_reference("oci:rel/dir@" + DIGEST).digest == DIGEST
    with pytest.raises(InvalidReferenceError):
        parse_reference("dir:/tmp/x")


def test_repository_name_grammar():
    assert validate_repository_name("a/b-c/d__e.f")
    for bad in ("A", "a/", "-a", "a..b", "a" * 256):
        with pytest.raises(InvalidReferenceError):
            validate_repository_name(bad)


def test_manifest_round_trip_keeps_unknown_fields():
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": DIGEST, "size": 2},
        "layers": [
            {
                "mediaType": mt.OCI_LAYER_GZIP,
                "digest": DIGEST,
                "size": 3,
                "urls": ["https://example.invalid/l"],
            }
        ],
        "vendor.extension": {"kept": True},
    }
    manifest = Manifest.from_bytes(json.dumps(doc).encode())
    assert json.loads(manifest.to_bytes()) == doc


def test_index_platforms_round_trip():
    platform = {
        "architecture": "arm64",
        "os": "linux",
        "variant": "v8",
        "os.features": ["x"],
    }
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.DOCKER_MANIFEST_LIST,
        "manifests": [
            {
                "mediaType": mt.DOCKER_MANIFEST,
                "digest": DIGEST,
                "size": 1,
                "platform": platform,
            }
        ],
    }
    index = parse_manifest_or_index(json.dumps(doc).encode())
    assert isinstance(index, Index)
    assert index.manifests[0].platform == Platform("linux", "arm64", "v8")
    assert json.loads(index.to_bytes()) == doc
    assert Platform.parse("linux/arm64").matches(index.manifests[0].platform)
    assert not Platform.parse("linux/amd64").matches(index.manifests[0].platform)


@pytest.mark.parametrize(
    "doc",
    [b"[]", b"{", b'{"schemaVersion":1,"config":{}}', b'{"schemaVersion":2}'],
)
def test_malformed_manifests_are_refused(doc):
    with pytest.raises(OCIError):
        Manifest.from_bytes(doc, mt.OCI_MANIFEST)


def test_layout_writer_publishes_only_on_commit(tmp_path):
    root = tmp_path / "layout"
    data = b'{"schemaVersion":2}'
    desc = Descriptor.for_bytes(mt.OCI_MANIFEST, data)
    writer = LayoutWriter(root)
    writer.add_bytes(data, desc.digest)
    assert not root.exists()
    writer.commit([("v1", desc)])
    layout = Layout.open(root)
    assert layout.resolve(tag="v1").digest == desc.digest
    assert layout.read_blob(desc) == data
    assert list(tmp_path.iterdir()) == [root]

    aborted = LayoutWriter(root)
    aborted.add_bytes(b"other", sha256_digest(b"other"))
    aborted.abort()
    assert not layout.has_blob(sha256_digest(b"other"))


def test_layout_errors_name_the_problem(tmp_path):
    with pytest.raises(LayoutError, match="not an OCI image layout"):
        Layout.open(tmp_path)
    layout = init_layout(tmp_path / "l")
    with pytest.raises(LayoutError, match="no tag 'x'"):
        layout.resolve(tag="x")
    desc = Descriptor(mt.OCI_CONFIG, DIGEST, 1)
    with pytest.raises(LayoutError, match="missing"):
        layout.read_blob(desc)
