"""The client rides out a flaky network: 5xx/429 answers are retried with
backoff, and a download cut off midway resumes where it stopped.

A small proxy on loopback sits between the client and the embedded registry
and misbehaves on purpose for the first requests it sees.
"""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from artifactd.errors import RegistryError
from artifactd.oci import mediatypes as mt
from artifactd.oci.model import Descriptor
from artifactd.registry.client import RegistryClient
from tests.registry.conftest import LiveRegistry
from tests.registry.flaky import FlakyProxy


def layer(data: bytes) -> Descriptor:
    return Descriptor(
        mt.OCI_LAYER_GZIP, "sha256:" + hashlib.sha256(data).hexdigest(), len(data)
    )


def test_busy_registry_is_retried_until_it_answers(embedded: LiveRegistry) -> None:
    data = os.urandom(10_000)
    with (
        FlakyProxy(embedded.url, busy=3) as proxy,
        RegistryClient(
            proxy.host, username=embedded.user, password=embedded.password, backoff=0.01
        ) as client,
    ):
        client.push_blob_bytes("team/app", data, layer(data))
        assert client.blob_size("team/app", layer(data).digest) == len(data)
    statuses_retried = [path for _, path, _ in proxy.seen[:4]]
    assert len(set(statuses_retried)) == 1, "the same request was sent again"


def test_retries_are_bounded(embedded: LiveRegistry) -> None:
    with (
        FlakyProxy(embedded.url, busy=100) as proxy,
        RegistryClient(proxy.host, retries=2, backoff=0.01) as client,
    ):
        with pytest.raises(RegistryError) as info:
            client.list_tags("team/app")
        assert getattr(info.value, "transient", False)
    assert len(proxy.seen) == 3


def test_cut_download_resumes_with_range(embedded: LiveRegistry) -> None:
    data = os.urandom(3 << 20)
    with RegistryClient(
        embedded.host, username=embedded.user, password=embedded.password
    ) as direct:
        direct.push_blob_bytes("team/app", data, layer(data))
    with (
        FlakyProxy(embedded.url, cut=1) as proxy,
        RegistryClient(
            proxy.host, username=embedded.user, password=embedded.password, backoff=0.01
        ) as client,
    ):
        with client.open_blob("team/app", layer(data)) as stream:
            assert stream.read() == data
    ranges = [
        r for method, path, r in proxy.seen if method == "GET" and "/blobs/" in path
    ]
    # The resumed request starts after what arrived whole, not from byte 0.
    resumed_at = int(ranges[-1].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= len(data) // 2


def _uploads(proxy: FlakyProxy) -> tuple[int, list[str]]:
    """Uploads started and the Content-Range of every PATCH, in order."""
    posts = sum(1 for method, path, _ in proxy.seen if method == "POST")
    patches = [rng for method, _, rng in proxy.seen if method == "PATCH"]
    return posts, patches


def test_cut_chunk_upload_resumes_where_the_registry_stands(
    embedded: LiveRegistry,
) -> None:
    data = os.urandom(3 << 20)
    desc = layer(data)
    with (
        FlakyProxy(embedded.url, cut_patches=(1_000_000,)) as proxy,
        RegistryClient(
            proxy.host,
            username=embedded.user,
            password=embedded.password,
            backoff=0.01,
            chunk_size=2 << 20,
        ) as client,
    ):
        client.push_blob_stream("team/app", io.BytesIO(data), desc)
        with client.open_blob("team/app", desc) as stream:
            assert stream.read() == data
    posts, patches = _uploads(proxy)
    assert posts == 1, "the upload was resumed, not started again"
    # The first chunk was cut after 1,000,000 bytes; only the rest went again.
    assert f"1000000-{(2 << 20) - 1}" in patches
    assert patches[-1] == f"{2 << 20}-{len(data) - 1}"


def test_cut_before_any_byte_starts_the_upload_over(embedded: LiveRegistry) -> None:
    """An upload holding nothing reads "0-0", as one holding a byte does."""
    data = os.urandom(300_000)
    desc = layer(data)
    with (
        FlakyProxy(embedded.url, cut_patches=(0, 0)) as proxy,
        RegistryClient(
            proxy.host,
            username=embedded.user,
            password=embedded.password,
            backoff=0.01,
            retries=1,
            chunk_size=100_000,
        ) as client,
    ):
        client.push_blob_stream("team/app", io.BytesIO(data), desc)
        with client.open_blob("team/app", desc) as stream:
            assert stream.read() == data
    posts, patches = _uploads(proxy)
    assert posts == 2, "the ambiguous upload was abandoned for a new one"
    assert patches[:3] == ["0-99999"] * 3
    assert not list((embedded.storage_root / "uploads").iterdir())
