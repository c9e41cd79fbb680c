"""Garbage collection: delete blobs no manifest references, safely while pushes run.

Mark: every manifest revision of every repository, with the config, layers
and child manifests it names, is live. Sweep: a blob that is not live and
was not written or used for ``grace_seconds`` is deleted, and so are the
repository links to it. Pushes keep working meanwhile because

- a blob being uploaded lives under ``uploads/`` until it is complete, and a
  completed one is recent, so the grace period spares it;
- a manifest push refreshes the mtime of every blob it references, and
  checks and stores the manifest under the storage's shared reference lock;
  the sweep re-reads each blob's mtime under the exclusive lock just before
  deleting it, so a blob is never removed from under a manifest that was
  accepted;
- a blob upload is committed and linked under the shared lock, and the
  sweep removes a blob's repository links and the blob itself together
  under the exclusive one, so a blob pushed again while GC runs keeps both.

Abandoned uploads older than ``upload_max_age`` and stray temporary files
older than the grace period go too.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from artifactd.errors import OCIError
from artifactd.oci.model import Index, parse_manifest_or_index
from artifactd.registry.storage import RegistryStorage

log = logging.getLogger(__name__)


@dataclass
class GCReport:
    manifests: int = 0
    blobs_kept: int = 0
    blobs_removed: int = 0
    bytes_removed: int = 0
    links_removed: int = 0
    uploads_removed: int = 0


def mark(storage: RegistryStorage) -> tuple[set[str], int]:
    """Digests of every blob a stored manifest references, and the manifest count."""
    live: set[str] = set()
    manifests = 0
    for repository in storage.list_repositories():
        for digest in storage.list_manifests(repository):
            manifests += 1
            live.add(digest)
            record = storage.get_manifest(repository, digest)
            if record is None:
                continue
            try:
                doc = parse_manifest_or_index(record.data, record.media_type)
            except OCIError:
                log.warning(
                    "gc_unreadable_manifest repo=%s digest=%s", repository, digest
                )
                continue
            if isinstance(doc, Index):
                live.update(d.digest for d in doc.manifests)
            else:
                live.add(doc.config.digest)
                live.update(d.digest for d in doc.layers)
            if doc.subject is not None:
                live.add(doc.subject.digest)
    return live, manifests


def collect_garbage(
    storage: RegistryStorage,
    grace_seconds: float = 3600,
    upload_max_age: float = 86400,
    dry_run: bool = False,
) -> GCReport:
    """Delete unreferenced blobs (see the module docstring); what was done."""
    report = GCReport()
    live, report.manifests = mark(storage)
    candidates = []
    for digest, _ in storage.iter_blobs():
        if digest in live:
            report.blobs_kept += 1
        else:
            candidates.append(digest)
    links = _links_by_digest(storage, set(candidates))
    with storage.reference_lock(exclusive=True):
        # Blob commits and links hold the shared lock, so no blob is written
        # or linked between this re-check and its removal.
        for digest in candidates:
            size = _removable_size(storage, digest, grace_seconds)
            if size is None:
                report.blobs_kept += 1
                continue
            report.blobs_removed += 1
            report.bytes_removed += size
            report.links_removed += len(links.get(digest, ()))
            if dry_run:
                continue
            for repository in links.get(digest, ()):
                storage.unlink_blob(repository, digest)
            storage.delete_blob(digest)
    report.uploads_removed = _old_uploads(storage, upload_max_age, dry_run)
    if not dry_run:
        storage.remove_stale_temp_files(grace_seconds)
    log.info(
        "gc_done manifests=%d kept=%d removed=%d bytes=%d uploads=%d dry_run=%s",
        report.manifests,
        report.blobs_kept,
        report.blobs_removed,
        report.bytes_removed,
        report.uploads_removed,
        dry_run,
    )
    return report


def _removable_size(
    storage: RegistryStorage, digest: str, grace_seconds: float
) -> int | None:
    stat = storage.blob_stat(digest)
    if stat is None or time.time() - stat[1] < grace_seconds:
        return None
    return stat[0]


def _links_by_digest(
    storage: RegistryStorage, candidates: set[str]
) -> dict[str, list[str]]:
    """The repositories linking each candidate blob.

    Read before the exclusive lock: a link made afterwards touches its blob,
    and the grace period then spares it.
    """
    links: dict[str, list[str]] = {}
    for repository in storage.list_repositories():
        for digest in storage.layer_links(repository):
            if digest in candidates:
                links.setdefault(digest, []).append(repository)
    return links


def _old_uploads(storage: RegistryStorage, max_age: float, dry_run: bool) -> int:
    removed = 0
    now = time.time()
    for upload_id, mtime in list(storage.iter_uploads()):
        if now - mtime >= max_age:
            removed += 1
            if not dry_run:
                storage.remove_upload(upload_id)
    return removed
