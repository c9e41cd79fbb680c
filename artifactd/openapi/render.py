"""Turning a response body into JSON or XML bytes.

Success and in-band failures are HTTP 200. JSON is the default: the Tea SDK
parses only JSON, and the core SDK hands raw bytes to its caller. XML (asked
for with ``Format=XML``, which only the core SDK can send) uses the action
name plus ``Response`` as the root element and repeats a list's element name
for each item, as the public API examples do.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

import orjson

JSON_CONTENT_TYPE = "application/json;charset=utf-8"
XML_CONTENT_TYPE = "text/xml;charset=utf-8"


def render_json(body: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON (what ``json.dumps`` with compact separators and
    ``ensure_ascii=False`` gives), in a few microseconds."""
    return orjson.dumps(body)


def render_xml(root: str, body: dict[str, Any]) -> bytes:
    parts = ['<?xml version="1.0" encoding="UTF-8"?>']
    _element(parts, root, body)
    return "".join(parts).encode()


def _element(parts: list[str], name: str, value: Any) -> None:
    if isinstance(value, list):
        for item in value:
            _element(parts, name, item)
        return
    parts.append(f"<{name}>")
    if isinstance(value, dict):
        for key, child in value.items():
            _element(parts, key, child)
    elif isinstance(value, bool):
        parts.append("true" if value else "false")
    elif value is not None:
        parts.append(escape(str(value)))
    parts.append(f"</{name}>")
