"""``artifactd serve``: run the service (the registry, and later the API)."""

from __future__ import annotations

import argparse
import logging

from artifactd.app import Service, build_service, create_app
from artifactd.config import load_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the registry service",
        description="Serve the embedded OCI registry at /v2/ with token auth.",
    )
    parser.add_argument("--config", help="TOML settings file")
    parser.add_argument("--data-dir", help="folder for the database and blobs")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 5000)")
    parser.set_defaults(run=run)


def start_message(service: Service) -> str:
    """What a start prints: where to push, and a new access key (shown once)."""
    settings = service.settings
    address = f"{settings.host}:{settings.port}"
    lines = [
        f"artifactd: registry at http://{address}/v2/ (data in {settings.data_dir})"
    ]
    key = service.new_key
    if key is not None:
        lines += [
            "",
            "An access key was created. Its secret is shown only now:",
            "",
            f"    AccessKeyId:     {key.id}",
            f"    AccessKeySecret: {key.secret}",
            "",
            "Use it as user name and password:",
            "",
            f"    docker login {address} -u {key.id}",
            f"    skopeo copy --dest-tls-verify=false --dest-creds {key.id}:SECRET \\",
            f"        docker://debian:bookworm docker://{address}/library/debian:bookworm",
            "",
        ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    settings = load_settings(
        args.config,
        overrides={"data_dir": args.data_dir, "host": args.host, "port": args.port},
    )
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    service = build_service(settings)
    app = create_app(settings, service=service)
    print(start_message(service), flush=True)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
    )
    return 0
