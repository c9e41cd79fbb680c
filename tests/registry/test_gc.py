"""Garbage collection and crash safety of the filesystem storage."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from artifactd.errors import DistributionError
from artifactd.registry.gc import collect_garbage
from artifactd.registry.storage import FilesystemStorage
from tests.registry.conftest import LiveRegistry
from tests.registry.test_api import image_manifest, put_manifest, sha


def age(storage: FilesystemStorage, digest: str, seconds: float) -> None:
    path = storage._blob_path(digest)
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_gc_removes_only_unreferenced_old_blobs(embedded: LiveRegistry) -> None:
    storage = embedded.service.registry.storage
    with httpx.Client(
        base_url=embedded.url, auth=(embedded.user, embedded.password)
    ) as http:
        data = image_manifest(http, "team/app")
        put_manifest(http, "team/app", "v1", data)
        orphan = http.post(
            "/v2/team/app/blobs/uploads/",
            params={"digest": sha(b"orphan")},
            content=b"orphan",
        )
        assert orphan.status_code == 201
        fresh = sha(b"fresh orphan")
        http.post(
            "/v2/team/app/blobs/uploads/",
            params={"digest": fresh},
            content=b"fresh orphan",
        )
        for digest, _ in list(storage.iter_blobs()):
            if digest != fresh:
                age(storage, digest, 7200)
        report = collect_garbage(storage, grace_seconds=3600)
        assert report.blobs_removed == 1
        assert storage.blob_size(sha(b"orphan")) is None
        assert storage.blob_size(fresh) is not None
        assert http.head(f"/v2/team/app/blobs/{sha(b'orphan')}").status_code == 404
        # The image is whole: manifest, config and layer all still there.
        manifest = http.get("/v2/team/app/manifests/v1").json()
        for desc in [manifest["config"], *manifest["layers"]]:
            assert http.get(f"/v2/team/app/blobs/{desc['digest']}").status_code == 200


def test_blob_pushed_again_during_the_sweep_keeps_its_link(
    embedded: LiveRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GC deletes an old orphan while a client pushes the same bytes again:
    the push waits for the sweep, and afterwards the blob and its repository
    link are both there."""
    storage = embedded.service.registry.storage
    blob = b"pushed twice"
    with httpx.Client(
        base_url=embedded.url, auth=(embedded.user, embedded.password)
    ) as http:
        first = http.post(
            "/v2/team/app/blobs/uploads/", params={"digest": sha(blob)}, content=blob
        )
        assert first.status_code == 201
        age(storage, sha(blob), 7200)
        pushes: list[int] = []
        delete_blob = storage.delete_blob

        def push_again() -> None:
            with httpx.Client(
                base_url=embedded.url, auth=(embedded.user, embedded.password)
            ) as again:
                pushes.append(
                    again.post(
                        "/v2/team/app/blobs/uploads/",
                        params={"digest": sha(blob)},
                        content=blob,
                    ).status_code
                )

        pusher = threading.Thread(target=push_again)

        def delete_while_a_push_arrives(digest: str) -> None:
            delete_blob(digest)
            pusher.start()
            time.sleep(0.5)  # the push would land now if nothing held it off

        monkeypatch.setattr(storage, "delete_blob", delete_while_a_push_arrives)
        report = collect_garbage(storage, grace_seconds=3600)
        pusher.join(10)
        assert report.blobs_removed == 1
        assert pushes == [201]
        assert http.head(f"/v2/team/app/blobs/{sha(blob)}").status_code == 200
        assert http.get(f"/v2/team/app/blobs/{sha(blob)}").content == blob


def test_gc_spares_blobs_a_manifest_push_just_used(tmp_path: Path) -> None:
    storage = FilesystemStorage(tmp_path)
    storage.put_blob(io.BytesIO(b"layer"), sha(b"layer"), 5)
    storage.link_blob("team/app", sha(b"layer"))
    age(storage, sha(b"layer"), 7200)
    # A manifest push touches what it references before it is stored.
    storage.touch_blob(sha(b"layer"))
    assert collect_garbage(storage, grace_seconds=3600).blobs_removed == 0


def test_gc_command_dry_run_and_real(tmp_path: Path) -> None:
    storage = FilesystemStorage(tmp_path / "data" / "registry")
    storage.put_blob(io.BytesIO(b"orphan"), sha(b"orphan"), 6)
    age(storage, sha(b"orphan"), 7200)
    command = [
        sys.executable,
        "-m",
        "artifactd.cli",
        "gc",
        "--data-dir",
        str(tmp_path / "data"),
    ]
    dry = subprocess.run(
        [*command, "--dry-run"], capture_output=True, text=True, check=True
    )
    assert "would remove 1 blobs (6 bytes)" in dry.stdout
    assert storage.blob_size(sha(b"orphan")) == 6
    real = subprocess.run(command, capture_output=True, text=True, check=True)
    assert "removed 1 blobs" in real.stdout
    assert storage.blob_size(sha(b"orphan")) is None


def test_bad_blob_leaves_no_file_behind(tmp_path: Path) -> None:
    storage = FilesystemStorage(tmp_path)
    with pytest.raises(DistributionError) as info:
        storage.put_blob(io.BytesIO(b"bytes"), sha(b"other"), None)
    assert info.value.code == "DIGEST_INVALID"
    with pytest.raises(DistributionError) as info:
        storage.put_blob(io.BytesIO(b"bytes"), sha(b"bytes"), 99)
    assert info.value.code == "SIZE_INVALID"
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_crash_leftovers_are_invisible_and_collected(tmp_path: Path) -> None:
    storage = FilesystemStorage(tmp_path)
    # What a crash mid-push can leave: a temp file, an upload, an unlinked blob.
    (tmp_path / "tmp" / "blob-crashed").write_bytes(b"partial")
    upload = storage.start_upload("team/app")
    storage.append_upload("team/app", upload, b"half", 0)
    storage.put_blob(io.BytesIO(b"unreferenced"), sha(b"unreferenced"), None)
    assert storage.list_tags("team/app") == []
    assert storage.get_manifest("team/app", "latest") is None
    assert not storage.repository_has_blob("team/app", sha(b"unreferenced"))
    report = collect_garbage(storage, grace_seconds=0, upload_max_age=0)
    assert report.blobs_removed == 1 and report.uploads_removed == 1
    assert [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "gc.lock"] == []
