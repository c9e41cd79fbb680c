"""The building blocks of the action table: parameters, response fields, actions.

A :class:`Param` both validates a request value and documents it; a
:class:`Field` documents (and lets tests check) one response field. Keeping the
two in one place is what makes the reference page and the server agree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from artifactd.openapi.errors import invalid_parameter, missing_parameter

STRING = "String"
INTEGER = "Integer"
LONG = "Long"
BOOLEAN = "Boolean"
OBJECT = "Object"
ARRAY = "Array"

_INTEGER_RE = re.compile(r"[+-]?\d{1,19}")


@dataclass(frozen=True)
class Param:
    """One request parameter: its wire name, type and constraints.

    ``kind`` is STRING, INTEGER, BOOLEAN or OBJECT (a JSON object carried in
    one value, validated field by field against ``fields``). An empty value
    of an optional parameter counts as absent.
    """

    name: str
    kind: str
    doc: str
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    pattern_doc: str = ""
    fields: tuple[Param, ...] = ()
    aliases: tuple[str, ...] = ()

    def parse(self, raw: Any) -> Any:
        """Return the typed value, or raise InvalidParameter naming the parameter."""
        if self.kind == INTEGER:
            return self._parse_integer(raw)
        if self.kind == BOOLEAN:
            return self._parse_boolean(raw)
        if self.kind == OBJECT:
            return self._parse_object(raw)
        return self._parse_string(raw)

    def _parse_integer(self, raw: Any) -> int:
        if isinstance(raw, bool) or not isinstance(raw, int | str):
            raise invalid_parameter(self.name, "must be an integer.")
        if isinstance(raw, str) and not _INTEGER_RE.fullmatch(raw.strip()):
            raise invalid_parameter(self.name, f"must be an integer, not {raw!r}.")
        value = int(raw)
        low, high = self.minimum, self.maximum
        if (low is not None and value < low) or (high is not None and value > high):
            raise invalid_parameter(self.name, f"must be {self.range_text()}.")
        return value

    def _parse_boolean(self, raw: Any) -> bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
            return raw.strip().lower() == "true"
        raise invalid_parameter(self.name, f"must be true or false, not {raw!r}.")

    def _parse_string(self, raw: Any) -> str:
        if not isinstance(raw, str):
            raise invalid_parameter(self.name, "must be a string.")
        if self.choices and raw not in self.choices:
            allowed = ", ".join(self.choices)
            raise invalid_parameter(self.name, f"must be one of {allowed}.")
        if self.max_length is not None and len(raw) > self.max_length:
            raise invalid_parameter(
                self.name, f"must be at most {self.max_length} characters long."
            )
        if self.pattern is not None and not re.fullmatch(self.pattern, raw):
            raise invalid_parameter(self.name, f"must be {self.pattern_doc}.")
        return raw

    def _parse_object(self, raw: Any) -> dict[str, Any]:
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError:
                raise invalid_parameter(self.name, "must be a JSON object.") from None
        if not isinstance(raw, dict):
            raise invalid_parameter(self.name, "must be a JSON object.")
        return parse_fields(self.fields, raw, prefix=f"{self.name}.")

    def range_text(self) -> str:
        if self.minimum is not None and self.maximum is not None:
            return f"between {self.minimum} and {self.maximum}"
        if self.minimum is not None:
            return f"at least {self.minimum}"
        return f"at most {self.maximum}"

    def constraint_text(self) -> str:
        """A short human description of the constraints, for the reference page."""
        parts = []
        if self.choices:
            parts.append("one of " + ", ".join(f"`{c}`" for c in self.choices))
        if self.minimum is not None or self.maximum is not None:
            parts.append(self.range_text())
        if self.max_length is not None:
            parts.append(f"at most {self.max_length} characters")
        if self.pattern_doc:
            parts.append(self.pattern_doc)
        if self.default is not None:
            default = (
                str(self.default).lower() if self.kind == BOOLEAN else self.default
            )
            parts.append(f"default `{default}`")
        if self.aliases:
            parts.append(
                "also accepted as " + ", ".join(f"`{a}`" for a in self.aliases)
            )
        return "; ".join(parts)


def parse_fields(
    params: tuple[Param, ...], raw: Mapping[str, Any], prefix: str = ""
) -> dict[str, Any]:
    """Validate ``raw`` against ``params``; unknown names are ignored.

    Returns every declared name: the parsed value, the default, or None.
    """
    values: dict[str, Any] = {}
    for param in params:
        value = raw.get(param.name)
        if value is None and param.aliases:
            value = _lookup_alias(param, raw)
        if value is None or value == "":
            if param.required:
                raise missing_parameter(prefix + param.name)
            values[param.name] = param.default
            continue
        named = param if not prefix else _renamed(param, prefix + param.name)
        values[param.name] = named.parse(value)
    return values


def _lookup_alias(param: Param, raw: Mapping[str, Any]) -> Any:
    for name in param.aliases:
        if name in raw:
            return raw[name]
    return None


def _renamed(param: Param, name: str) -> Param:
    return Param(**{**param.__dict__, "name": name})


@dataclass(frozen=True)
class Field:
    """One response field: name, type as the SDK model declares it, meaning."""

    name: str
    kind: str
    doc: str
    children: tuple[Field, ...] = ()


@dataclass(frozen=True)
class Action:
    """One RPC action: its parameters, response fields and documentation.

    ``one_of`` lists alternative groups of parameters of which at least one
    group must be complete (``RepoId``, or ``RepoNamespaceName`` with
    ``RepoName``). ``extension`` marks actions the cloud API lacks;
    ``uses_registry`` those whose handler calls the registry (never run on the
    event loop).
    """

    name: str
    family: str
    summary: str
    params: tuple[Param, ...]
    response: tuple[Field, ...] = ()
    one_of: tuple[tuple[str, ...], ...] = ()
    extension: bool = False
    sdk_method: str = "POST"
    errors: tuple[str, ...] = ()
    notes: str = ""
    uses_registry: bool = False

    def validate(self, raw: Mapping[str, str]) -> dict[str, Any]:
        """Typed values for every parameter, or a GatewayError naming the problem."""
        values = parse_fields(self.params, raw)
        if self.one_of and not any(
            all(values.get(n) is not None for n in group) for group in self.one_of
        ):
            wanted = " or ".join(" and ".join(group) for group in self.one_of)
            raise missing_parameter(wanted)
        return values
