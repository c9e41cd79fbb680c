"""The ``artifactd`` command line.

Each subcommand lives in its own module under :mod:`artifactd.commands` and
exposes ``register(subparsers)``, which adds its parser and sets ``run`` (a
function taking the parsed arguments and returning an exit status).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from artifactd import __version__, commands
from artifactd.errors import ArtifactdError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="artifactd",
        description="Container registry with accelerated-image builds.",
    )
    parser.add_argument(
        "--version", action="version", version=f"artifactd {__version__}"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_info in sorted(
        pkgutil.iter_modules(commands.__path__), key=lambda m: m.name
    ):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{module_info.name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except ArtifactdError as exc:
        print(f"artifactd {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"artifactd {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
