"""Converted layers remembered across builds.

Keyed by the source layer's digest and the build options' key, so a base
layer shared by many images is converted once (see builds/cache.py).
"""

from __future__ import annotations

import time

from sqlalchemy import Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from artifactd.store.db import Base


class ConvertedLayer(Base):
    __tablename__ = "converted_layers"

    source_digest: Mapped[str] = mapped_column(String(80), primary_key=True)
    options_key: Mapped[str] = mapped_column(String(80), primary_key=True)
    #: The converted layer's OCI descriptor, as JSON.
    descriptor: Mapped[str] = mapped_column(Text)
    diff_id: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[int] = mapped_column(Integer)


def find_converted(
    session: Session, source_digest: str, options_key: str
) -> ConvertedLayer | None:
    return session.scalars(
        select(ConvertedLayer).where(
            ConvertedLayer.source_digest == source_digest,
            ConvertedLayer.options_key == options_key,
        )
    ).first()


def remember_converted(
    session: Session,
    source_digest: str,
    options_key: str,
    descriptor: str,
    diff_id: str,
) -> None:
    session.merge(
        ConvertedLayer(
            source_digest=source_digest,
            options_key=options_key,
            descriptor=descriptor,
            diff_id=diff_id,
            created_at=int(time.time()),
        )
    )
