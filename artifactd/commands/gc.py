"""``artifactd gc``: delete registry blobs no manifest references."""

from __future__ import annotations

import argparse

from artifactd.config import load_settings
from artifactd.registry.gc import collect_garbage
from artifactd.registry.storage import FilesystemStorage


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "gc",
        help="delete unreferenced registry blobs",
        description=(
            "Delete blobs that no manifest references. Safe while the service "
            "runs: blobs written or used within the grace period are kept."
        ),
    )
    parser.add_argument("--config", help="TOML settings file")
    parser.add_argument("--data-dir", help="the service's data folder")
    parser.add_argument(
        "--grace",
        type=int,
        help="keep blobs written or used this many seconds ago (default 3600)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="report what would go, delete nothing"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(
        args.config,
        overrides={"data_dir": args.data_dir, "gc_grace_seconds": args.grace},
    )
    storage = FilesystemStorage(settings.registry_dir)
    report = collect_garbage(storage, settings.gc_grace_seconds, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    print(
        f"{report.manifests} manifests, {report.blobs_kept} blobs kept; {verb} "
        f"{report.blobs_removed} blobs ({report.bytes_removed} bytes), "
        f"{report.links_removed} repository links, {report.uploads_removed} uploads"
    )
    return 0
