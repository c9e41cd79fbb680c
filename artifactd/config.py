"""Settings: one typed object, from defaults, a TOML file and the environment.

Precedence, lowest first: the defaults below, the TOML file given with
``--config`` (top-level keys named as the fields), ``ARTIFACTD_<FIELD>``
environment variables (upper case), then command-line flags. Everything is
validated once, at start-up, and a bad value raises :class:`ConfigError`
naming the field and where it came from.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from artifactd.errors import ConfigError

ENV_PREFIX = "ARTIFACTD_"
AUTH_MODES = ("token", "basic", "none")


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "artifactd"


@dataclass(frozen=True)
class Settings:
    #: Folder holding the SQLite database, blobs and the token signing key.
    data_dir: Path = field(default_factory=_default_data_dir)
    #: Address to listen on; 127.0.0.1 keeps the service local to the machine.
    host: str = "127.0.0.1"
    port: int = 5000
    #: SQLAlchemy URL; empty means SQLite in ``data_dir``.
    database_url: str = ""
    #: Base URL clients reach the service at (``https://registry.example``),
    #: used for the token realm; empty: each request's own Host.
    public_url: str = ""
    #: ``token`` (Docker bearer token flow), ``basic``, or ``none`` (no auth
    #: at all; only for a throwaway local registry).
    auth_mode: str = "token"
    #: Lifetime of registry bearer tokens, in seconds.
    token_ttl: int = 300
    #: An access key to create at start-up (for automation); both or neither.
    bootstrap_access_key_id: str = ""
    bootstrap_access_key_secret: str = ""
    #: URLs receiving push events in Distribution's notification format.
    webhook_endpoints: tuple[str, ...] = ()
    #: Garbage collection spares blobs written or used this recently.
    gc_grace_seconds: int = 3600
    #: Name of the one registry instance, as the API reports it.
    instance_name: str = "artifactd"
    log_level: str = "info"

    @property
    def registry_dir(self) -> Path:
        return self.data_dir / "registry"

    def validate(self) -> Settings:
        """Return self if every field is usable; ConfigError otherwise."""
        if not 0 < self.port < 65536:
            raise ConfigError(f"port must be 1-65535, not {self.port}")
        if self.auth_mode not in AUTH_MODES:
            raise ConfigError(
                f"auth_mode must be one of {', '.join(AUTH_MODES)}, "
                f"not {self.auth_mode!r}"
            )
        if not 10 <= self.token_ttl <= 86400:
            raise ConfigError(
                f"token_ttl must be 10-86400 seconds, not {self.token_ttl}"
            )
        if bool(self.bootstrap_access_key_id) != bool(self.bootstrap_access_key_secret):
            raise ConfigError(
                "bootstrap_access_key_id and bootstrap_access_key_secret go together"
            )
        if (
            self.bootstrap_access_key_secret
            and len(self.bootstrap_access_key_secret) < 16
        ):
            raise ConfigError(
                "bootstrap_access_key_secret must be 16 characters or more"
            )
        for url in (self.public_url, *self.webhook_endpoints):
            parsed = urlparse(url)
            if url and (parsed.scheme not in ("http", "https") or not parsed.netloc):
                raise ConfigError(f"{url!r} is not an http(s) URL")
        if self.gc_grace_seconds < 0:
            raise ConfigError("gc_grace_seconds must not be negative")
        return self


def _convert(name: str, value: Any, kind: Any, origin: str) -> Any:
    try:
        if kind in (int, "int"):
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if kind in (Path, "Path"):
            return Path(str(value)).expanduser()
        if kind in ("tuple[str, ...]",):
            if isinstance(value, str):
                return tuple(part.strip() for part in value.split(",") if part.strip())
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return tuple(value)
            raise ValueError(value)
        if not isinstance(value, str):
            raise ValueError(value)
        return value
    except ValueError as exc:
        raise ConfigError(f"{name} from {origin}: invalid value {value!r}") from exc


def _apply(settings: Settings, values: Mapping[str, Any], origin: str) -> Settings:
    kinds = {f.name: f.type for f in fields(Settings)}
    changes = {}
    for name, value in values.items():
        if name not in kinds:
            raise ConfigError(f"{origin}: unknown setting {name!r}")
        changes[name] = _convert(name, value, kinds[name], origin)
    return replace(settings, **changes)


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Settings from defaults, ``config_file``, the environment and overrides."""
    settings = Settings()
    if config_file is not None:
        path = Path(config_file)
        try:
            data = tomllib.loads(path.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
        settings = _apply(settings, data, f"config file {path}")
    environ = os.environ if env is None else env
    names = {f.name for f in fields(Settings)}
    from_env = {
        name: environ[ENV_PREFIX + name.upper()]
        for name in names
        if ENV_PREFIX + name.upper() in environ
    }
    settings = _apply(settings, from_env, "the environment")
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    settings = _apply(settings, given, "the command line")
    return settings.validate()
