"""``artifactd serve``: run the whole service in one process.

The registry at ``/v2/``, the OpenAPI at ``/``, ``/healthz``, ``/metrics`` and
a pool of build workers, over a data directory (SQLite and blobs). SIGTERM or
Ctrl-C shuts down gracefully: running builds are released, not lost, and run
again at the next start.
"""

from __future__ import annotations

import argparse
import gc
import logging

from artifactd.app import Service, build_service, create_app
from artifactd.config import load_settings
from artifactd.openapi.launch import sdk_example


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the registry, the API and the build workers",
        description=(
            "Serve the embedded OCI registry at /v2/, the ACR-compatible API at /, "
            "/healthz and /metrics, and run the build workers, in one process."
        ),
    )
    parser.add_argument("--config", help="TOML settings file")
    parser.add_argument("--data-dir", help="folder for the database and blobs")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 5000)")
    parser.add_argument("--workers", type=int, help="builds run at once (default 2)")
    parser.set_defaults(run=run)


def start_message(service: Service) -> str:
    """What a start prints: where things are, and a new access key (shown once)."""
    settings = service.settings
    address = f"{settings.host}:{settings.port}"
    lines = [
        f"artifactd: registry at http://{address}/v2/, "
        f"API at http://{address}/ (instance {service.instance.id}), "
        f"data in {settings.data_dir}",
        f"artifactd: {settings.build_workers} build workers; "
        f"metrics at http://{address}/metrics",
    ]
    key = service.new_key
    if key is None:
        return "\n".join(lines)
    lines += [
        "",
        "An access key was created. Its secret is shown only now:",
        "",
        f"    AccessKeyId:     {key.id}",
        f"    AccessKeySecret: {key.secret}",
        "",
        "Push images with it as user name and password:",
        "",
        f"    docker login {address} -u {key.id}",
        f"    skopeo copy --dest-tls-verify=false --dest-creds {key.id}:SECRET \\",
        f"        docker://debian:bookworm docker://{address}/library/debian:bookworm",
        "",
        sdk_example(key.id, key.secret, address, service.instance.id),
        "Manage keys with: artifactd keys create | list | delete",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    settings = load_settings(
        args.config,
        overrides={
            "data_dir": args.data_dir,
            "host": args.host,
            "port": args.port,
            "build_workers": args.workers,
        },
    )
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    service = build_service(settings)
    app = create_app(settings, service=service)
    print(start_message(service), flush=True)
    # What start-up built lives as long as the process: keep it out of the
    # garbage collector's passes, which then stay short under load.
    gc.collect()
    gc.freeze()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    return 0
