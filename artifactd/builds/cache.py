"""The converter's layer cache, kept in the store."""

from __future__ import annotations

import json

from sqlalchemy.orm import Session, sessionmaker

from artifactd.oci.model import Descriptor
from artifactd.store import layer_cache


class StoreLayerCache:
    """:class:`~artifactd.formats.image.LayerCache` backed by the database, so
    conversions are shared by every build and survive restarts."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def get(
        self, source_digest: str, options_key: str
    ) -> tuple[Descriptor, str] | None:
        with self._sessions() as session:
            row = layer_cache.find_converted(session, source_digest, options_key)
            if row is None:
                return None
            return Descriptor.from_json(json.loads(row.descriptor)), row.diff_id

    def put(
        self, source_digest: str, options_key: str, converted: Descriptor, diff_id: str
    ) -> None:
        with self._sessions.begin() as session:
            layer_cache.remember_converted(
                session,
                source_digest,
                options_key,
                json.dumps(converted.to_json()),
                diff_id,
            )
