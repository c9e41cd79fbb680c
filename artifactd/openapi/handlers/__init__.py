"""Handlers per resource family, merged into one table keyed by action name.

A handler takes a :class:`Context` (validated parameters, services) and
returns the action's fields; it raises BusinessError for in-band failures.
"""

from artifactd.openapi.handlers import builds, resources, tags
from artifactd.openapi.handlers.base import Context

HANDLERS = {**resources.HANDLERS, **tags.HANDLERS, **builds.HANDLERS}

__all__ = ["HANDLERS", "Context"]
