"""Serve the registry and the API in one process, as ``artifactd serve`` will.

    python -m tests.openapi.serve_combined DATA_DIR PORT

The API routes come from :func:`artifactd.openapi.launch.mount_api`, mounted
after the registry's; the first start prints the API's first-start message.
"""

from __future__ import annotations

import sys

import uvicorn

from artifactd.app import build_service, create_app
from artifactd.config import load_settings
from artifactd.openapi.launch import first_start_message, mount_api


def main(data_dir: str, port: str) -> int:
    settings = load_settings(
        overrides={"data_dir": data_dir, "port": int(port), "log_level": "warning"}
    )
    service = build_service(settings)
    routes = mount_api(service.sessions, service.instance.id, service.registry.storage)
    app = create_app(settings, extra_routes=routes, service=service)
    if service.new_key is not None:
        endpoint = f"127.0.0.1:{port}"
        print(first_start_message(service.new_key, endpoint, service.instance.id))
        sys.stdout.flush()
    uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
