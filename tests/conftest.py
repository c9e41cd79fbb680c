"""Fixtures shared by every test package: external tools and the image corpus.

A missing tool skips a test on a developer's machine, but fails it in CI
(``CI=true``), where scripts/test.sh must have installed everything.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("ARTIFACTD_SHARED_DIR", ROOT.parent / "shared"))


def require(condition: bool, what: str) -> None:
    """Skip (locally) or fail (in CI) when a prerequisite is missing."""
    if condition:
        return
    message = f"{what} is missing; scripts/test.sh installs it"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"the {name} command")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def estargz_ref() -> str:
    """Path of the Go reference verifier (built by shared/tools/estargz-ref)."""
    path = os.environ.get("ESTARGZ_REF") or str(
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        / "estargz-ref"
        / "estargz-ref"
    )
    require(os.access(path, os.X_OK), "the estargz-ref reference verifier")
    return path


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The folder of OCI layouts built by shared/corpus/make-corpus.sh."""
    path = Path(
        os.environ.get("OCI_CORPUS_DIR")
        or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "oci-corpus"
    )
    require((path / "edge" / "oci-layout").is_file(), f"the image corpus in {path}")
    return path


@pytest.fixture(scope="session")
def skopeo() -> str:
    return require_tool("skopeo")
