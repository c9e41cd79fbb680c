"""A build service wired to a store and to repositories kept as OCI layouts."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import BinaryIO

import pytest

from artifactd.builds.cache import StoreLayerCache
from artifactd.builds.service import BuildService
from artifactd.builds.triggers import BuildTrigger
from artifactd.metrics import Metrics
from artifactd.oci.digest import Digester
from artifactd.oci.layout import Layout, LayoutSource, blob_path, init_layout
from artifactd.oci.model import Descriptor
from artifactd.store import builds, repositories
from artifactd.store.db import create_db_engine, create_schema, session_factory
from artifactd.workers.pool import WorkerPool


class LayoutRepository(LayoutSource):
    """A repository as an OCI layout that publishes each write at once, the
    way a registry does (blobs first, the tag when its manifest is put)."""

    def has_blob(self, digest: str) -> bool:
        return self.layout.has_blob(digest)

    def put_blob_stream(self, stream: BinaryIO, desc: Descriptor) -> None:
        target = blob_path(self.layout.root, desc.digest)
        tmp = target.with_name(target.name + ".tmp")
        digester = Digester()
        with tmp.open("wb") as out:
            while chunk := stream.read(1 << 20):
                digester.update(chunk)
                out.write(chunk)
        assert digester.digest() == desc.digest
        os.replace(tmp, target)

    def put_blob_file(self, path: Path, desc: Descriptor) -> None:
        with path.open("rb") as stream:
            self.put_blob_stream(stream, desc)

    def put_manifest(self, reference: str, data: bytes, media_type: str) -> str:
        desc = Descriptor.for_bytes(media_type, data)
        blob_path(self.layout.root, desc.digest).write_bytes(data)
        if reference:
            self.layout.update_index(reference, desc)
        return desc.digest

    def mount_blob(self, desc: Descriptor) -> bool:
        """Link a blob from a sibling repository, as a registry's shared blob
        store does."""
        repos = self.layout.root.parent.parent
        for other in repos.glob("*/*"):
            found = blob_path(other, desc.digest)
            if found.is_file():
                os.link(found, blob_path(self.layout.root, desc.digest))
                return True
        return False

    def tag_digest(self, tag: str) -> str | None:
        found = self.layout.tags().get(tag)
        return found.digest if found else None


class BuildWorld:
    """Store, repositories on disk, trigger, service and pool, for one test."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.engine = create_db_engine(f"sqlite:///{root / 'store.db'}")
        create_schema(self.engine)
        self.sessions = session_factory(self.engine)
        with self.sessions.begin() as session:
            self.instance_id = repositories.ensure_instance(session, "test", "local").id
        self.metrics = Metrics(self.sessions)
        self.service = BuildService(
            self.sessions,
            self.open,
            cache=StoreLayerCache(self.sessions),
            work_dir=str(root),
            metrics=self.metrics,
        )
        self.pool = WorkerPool(self.sessions, self.service, size=2, poll_seconds=0.1)
        self.trigger = BuildTrigger(
            self.sessions, self.instance_id, self.resolve, self.pool.wake
        )

    def open(self, name: str):
        repo = LayoutRepository(Layout.open(self.root / "repos" / name))
        return repo, repo

    def resolve(self, name: str, tag: str) -> str | None:
        return LayoutRepository(Layout.open(self.root / "repos" / name)).tag_digest(tag)

    def add_repository(self, name: str, source_layout: Path | None = None) -> str:
        namespace, _, repo_name = name.partition("/")
        path = self.root / "repos" / name
        if source_layout is not None:
            shutil.copytree(source_layout, path)
        else:
            init_layout(path)
        with self.sessions.begin() as session:
            ns = repositories.find_namespace(session, self.instance_id, name=namespace)
            if ns is None:
                ns = repositories.create_namespace(session, self.instance_id, namespace)
            repo = repositories.create_repository(session, ns, repo_name)
            return repo.id

    def add_rule(self, repo_id: str, **parameters) -> str:
        with self.sessions.begin() as session:
            rule = builds.create_rule(
                session,
                self.instance_id,
                builds.SCOPE_REPOSITORY,
                repo_id,
                builds.RuleParameters(**parameters),
            )
            return rule.id

    def task(self, task_id: str) -> builds.BuildTask:
        with self.sessions() as session:
            return session.get(builds.BuildTask, task_id)

    def logs(self, task_id: str) -> list[str]:
        with self.sessions() as session:
            lines, _ = builds.list_logs(session, task_id, 0, 1000)
            return [line.message for line in lines]

    def wait(self, task_id: str, timeout: float = 120) -> builds.BuildTask:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            task = self.task(task_id)
            if task.status in builds.FINISHED:
                return task
            time.sleep(0.1)
        raise AssertionError(f"task {task_id} still {self.task(task_id).status}")


@pytest.fixture
def world(tmp_path):
    world = BuildWorld(tmp_path)
    world.pool.start()
    yield world
    world.pool.stop()
    world.engine.dispose()
