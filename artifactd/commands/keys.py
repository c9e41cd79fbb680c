"""``artifactd keys create|list|delete``: the access keys that sign API calls."""

from __future__ import annotations

import argparse
import sys
import time

from sqlalchemy.orm import Session, sessionmaker

from artifactd.config import load_settings
from artifactd.errors import RecordNotFoundError
from artifactd.store import keys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "keys",
        help="manage API access keys",
        description=(
            "Keys live in the service's store: pass the same --config or "
            "--data-dir (or ARTIFACTD_* variables) as artifactd serve."
        ),
    )
    parser.add_argument("--config", help="TOML settings file")
    parser.add_argument("--data-dir", help="the service's data folder")
    actions = parser.add_subparsers(
        dest="keys_command", metavar="ACTION", required=True
    )
    create = actions.add_parser("create", help="create a key; the secret is shown once")
    create.add_argument("--description", default="", help="what the key is for")
    create.set_defaults(run=_create)
    listing = actions.add_parser("list", help="list keys (never their secrets)")
    listing.set_defaults(run=_list)
    delete = actions.add_parser("delete", help="delete a key; its calls stop working")
    delete.add_argument("key_id", help="the AccessKeyId to delete")
    delete.set_defaults(run=_delete)


def _create(args: argparse.Namespace) -> int:
    sessions = _sessions(args)
    with sessions() as session, session.begin():
        key = keys.create_key(session, args.description)
        print(f"AccessKeyId:     {key.id}")
        print(f"AccessKeySecret: {key.secret}")
    print("Store the secret now: it is not shown again.")
    return 0


def _list(args: argparse.Namespace) -> int:
    sessions = _sessions(args)
    with sessions() as session:
        found = keys.list_keys(session)
    print(f"{'ACCESS KEY ID':26} {'STATE':8} {'CREATED (UTC)':20} DESCRIPTION")
    for key in found:
        state = "enabled" if key.enabled else "disabled"
        created = _utc(key.created_at)
        print(f"{key.id:26} {state:8} {created:20} {key.description}")
    return 0


def _delete(args: argparse.Namespace) -> int:
    sessions = _sessions(args)
    try:
        with sessions() as session, session.begin():
            keys.delete_key(session, args.key_id)
    except RecordNotFoundError as exc:
        print(f"artifactd keys delete: {exc}", file=sys.stderr)
        return 1
    print(f"deleted {args.key_id}")
    return 0


def _utc(seconds: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))


def _sessions(args: argparse.Namespace) -> sessionmaker[Session]:
    """The store ``artifactd serve`` would open with the same settings."""
    from artifactd.app import open_sessions

    settings = load_settings(args.config, overrides={"data_dir": args.data_dir})
    return open_sessions(settings)
