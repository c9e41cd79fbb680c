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
ACCELERATED_FORMATS = ("estargz",)


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
    #: Builds run at once in this process; more tasks wait in the store.
    #: 0 runs none here: this process only serves and queues, and tasks wait
    #: for a process with workers on the same store.
    build_workers: int = 2
    #: Threads compressing eStargz members, shared by all running builds
    #: (0: one per CPU).
    compress_threads: int = 0
    #: A build whose worker stops renewing its lease for this long (the
    #: process died) is run again by the next worker that looks.
    build_lease_seconds: int = 30
    #: gzip level (0-9) and chunk size (bytes) of converted layers.
    build_compression_level: int = 9
    build_chunk_size: int = 4 << 20
    #: Format of IMAGE_TO_ECI_ACCELERATED_IMAGE builds (IMAGE_TO_ACCELERATED_IMAGE
    #: is always eStargz).
    eci_accelerated_format: str = "estargz"
    #: API requests per second allowed per access key (0: unlimited).
    api_rate_per_key: int = 0
    #: How long the API keeps an access key it looked up, in seconds: a key
    #: deleted with ``artifactd keys delete`` stops working within this time.
    api_key_cache_seconds: int = 5

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
        if not 0 <= self.build_workers <= 64:
            raise ConfigError(f"build_workers must be 0-64, not {self.build_workers}")
        if not 0 <= self.compress_threads <= 256:
            raise ConfigError(
                f"compress_threads must be 0-256, not {self.compress_threads}"
            )
        if not 5 <= self.build_lease_seconds <= 3600:
            raise ConfigError(
                f"build_lease_seconds must be 5-3600, not {self.build_lease_seconds}"
            )
        if not 0 <= self.build_compression_level <= 9:
            raise ConfigError(
                "build_compression_level must be 0-9, "
                f"not {self.build_compression_level}"
            )
        if not 64 << 10 <= self.build_chunk_size <= 1 << 30:
            raise ConfigError(
                f"build_chunk_size must be 64 KiB to 1 GiB, not {self.build_chunk_size}"
            )
        if self.eci_accelerated_format not in ACCELERATED_FORMATS:
            raise ConfigError(
                "eci_accelerated_format must be one of "
                f"{', '.join(ACCELERATED_FORMATS)}, "
                f"not {self.eci_accelerated_format!r}"
            )
        if self.api_rate_per_key < 0:
            raise ConfigError("api_rate_per_key must not be negative")
        if not 0 <= self.api_key_cache_seconds <= 3600:
            raise ConfigError(
                "api_key_cache_seconds must be 0-3600, "
                f"not {self.api_key_cache_seconds}"
            )
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
