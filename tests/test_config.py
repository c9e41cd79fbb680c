"""Settings: defaults, TOML file, environment and flags, validated with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from artifactd.config import load_settings
from artifactd.errors import ConfigError


def test_precedence_file_then_env_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "artifactd.toml"
    config.write_text(
        'port = 6000\nhost = "0.0.0.0"\ntoken_ttl = 600\n'
        'webhook_endpoints = ["http://127.0.0.1:9000/hook"]\n'
    )
    settings = load_settings(
        config,
        env={"ARTIFACTD_PORT": "7000", "ARTIFACTD_DATA_DIR": str(tmp_path / "d")},
        overrides={"host": "127.0.0.1", "port": None},
    )
    assert settings.port == 7000
    assert settings.host == "127.0.0.1"
    assert settings.token_ttl == 600
    assert settings.data_dir == tmp_path / "d"
    assert settings.registry_dir == tmp_path / "d" / "registry"
    assert settings.webhook_endpoints == ("http://127.0.0.1:9000/hook",)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ARTIFACTD_PORT": "http"}, "port from the environment"),
        ({"ARTIFACTD_PORT": "70000"}, "port must be 1-65535"),
        ({"ARTIFACTD_AUTH_MODE": "open"}, "auth_mode must be one of"),
        ({"ARTIFACTD_BOOTSTRAP_ACCESS_KEY_ID": "LTAIx"}, "go together"),
        ({"ARTIFACTD_WEBHOOK_ENDPOINTS": "ftp://x"}, "is not an http(s) URL"),
        ({"ARTIFACTD_TOKEN_TTL": "1"}, "token_ttl must be"),
    ],
)
def test_bad_values_name_the_field(env: dict[str, str], message: str) -> None:
    with pytest.raises(
        ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        load_settings(env=env)


def test_unknown_key_and_bad_toml_are_reported(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("prot = 5000\n")
    with pytest.raises(ConfigError, match="unknown setting 'prot'"):
        load_settings(config, env={})
    config.write_text("port = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(config, env={})
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "missing.toml", env={})
