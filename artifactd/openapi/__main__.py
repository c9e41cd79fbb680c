"""Serve the API alone: ``python -m artifactd.openapi --data-dir D --port P``.

``artifactd serve`` mounts the same app next to the registry; this launcher
serves only the API, for tests and benchmarks, with tags read from a
distribution-API registry given by ``--registry``.
"""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn

from artifactd.openapi.launch import build_api, first_start_message
from artifactd.openapi.tagsources import DistributionTags


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m artifactd.openapi")
    parser.add_argument("--data-dir", required=True, help="store folder")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument(
        "--registry",
        default="http://127.0.0.1:5000",
        help="base URL of the registry holding the tags",
    )
    parser.add_argument(
        "--rate-per-key", type=float, default=None, help="requests/s per access key"
    )
    parser.add_argument(
        "--secret-cache-seconds",
        type=float,
        default=5.0,
        help="how long a looked-up access key stays cached",
    )
    parser.add_argument(
        "--exit-after-start",
        action="store_true",
        help="prepare the store (and print a first key) without serving",
    )
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)

    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    tags = DistributionTags(args.registry)
    api = build_api(
        args.data_dir,
        tags,
        rate_per_key=args.rate_per_key,
        secret_cache_seconds=args.secret_cache_seconds,
    )
    if api.first_key is not None:
        endpoint = f"{args.host}:{args.port}"
        print(first_start_message(api.first_key, endpoint, api.instance.id), flush=True)
    if args.exit_after_start:
        tags.close()
        return 0
    uvicorn.run(
        api.app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
    )
    tags.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
