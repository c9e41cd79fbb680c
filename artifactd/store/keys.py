"""Access keys: the id/secret pairs that sign API requests.

A secret must be available in clear to verify HMAC signatures, so it is
stored as is; the database file lives in the data directory, which the
service creates readable by its own user only. The secret is shown to the
user once, when the key is created.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import time
from collections.abc import Sequence

from sqlalchemy import Boolean, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from artifactd.errors import RecordNotFoundError
from artifactd.store.db import Base

_ID_ALPHABET = string.ascii_letters + string.digits


class AccessKey(Base):
    __tablename__ = "access_keys"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(String(255), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[int] = mapped_column(Integer)


def create_key(session: Session, description: str = "") -> AccessKey:
    """A new enabled key: id ``LTAI`` + 20 characters, a 30-character secret."""
    key = AccessKey(
        id="LTAI" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(20)),
        secret="".join(secrets.choice(_ID_ALPHABET) for _ in range(30)),
        description=description,
        enabled=True,
        created_at=int(time.time()),
    )
    session.add(key)
    session.flush()
    return key


def list_keys(session: Session) -> Sequence[AccessKey]:
    return session.scalars(select(AccessKey).order_by(AccessKey.created_at)).all()


def delete_key(session: Session, key_id: str) -> None:
    key = session.get(AccessKey, key_id)
    if key is None:
        raise RecordNotFoundError(f"access key {key_id} does not exist")
    session.delete(key)
    session.flush()


def lookup_secret(session: Session, key_id: str) -> str | None:
    """The secret of an enabled key, or None."""
    key = session.get(AccessKey, key_id)
    if key is None or not key.enabled:
        return None
    return key.secret


def ensure_first_key(session: Session) -> AccessKey | None:
    """Create a key when none exists yet (first start); None otherwise."""
    if session.scalars(select(AccessKey.id).limit(1)).first() is not None:
        return None
    return create_key(session, description="created at first start")


def registry_password(key: AccessKey, expires_at: int) -> str:
    """A temporary ``docker login`` password for ``key``, valid until ``expires_at``.

    Stateless: ``<expiry>.<hex HMAC-SHA256 of id and expiry under the secret>``,
    so deleting or disabling the key revokes every password issued for it.
    """
    mac = hmac.new(
        key.secret.encode(), f"{key.id}:{expires_at}".encode(), hashlib.sha256
    )
    return f"{expires_at}.{mac.hexdigest()}"


def check_registry_password(
    session: Session, key_id: str, password: str, now: float | None = None
) -> bool:
    """True when ``password`` is the key's secret or an unexpired temporary one."""
    secret = lookup_secret(session, key_id)
    if secret is None:
        return False
    if hmac.compare_digest(secret, password):
        return True
    expiry, _, _ = password.partition(".")
    if not expiry.isdigit() or int(expiry) < (time.time() if now is None else now):
        return False
    key = session.get(AccessKey, key_id)
    assert key is not None
    return hmac.compare_digest(registry_password(key, int(expiry)), password)


def ensure_key(
    session: Session, key_id: str, secret: str, description: str = "bootstrap"
) -> tuple[AccessKey, bool]:
    """The key ``key_id`` with exactly ``secret``, enabled; True if it was created.

    For automation (``ARTIFACTD_BOOTSTRAP_ACCESS_KEY_ID``/``_SECRET``): a later
    start with another secret replaces the stored one.
    """
    key = session.get(AccessKey, key_id)
    if key is None:
        key = AccessKey(
            id=key_id,
            secret=secret,
            description=description,
            enabled=True,
            created_at=int(time.time()),
        )
        session.add(key)
        session.flush()
        return key, True
    key.secret = secret
    key.enabled = True
    session.flush()
    return key, False
