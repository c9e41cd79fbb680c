"""What every handler receives, and small helpers shared by the families."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from artifactd.openapi.errors import invalid_parameter

if TYPE_CHECKING:
    from artifactd.openapi.services import ApiServices


@dataclass(slots=True)
class Context:
    """One validated call: the services, typed parameters and the caller's key.

    Not frozen: a frozen dataclass pays for a guarded assignment per field,
    and every API call builds one.
    """

    services: ApiServices
    params: dict[str, Any]
    access_key_id: str
    action: str

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session committed when the block ends, rolled back if it raises."""
        with self.services.sessions() as session, session.begin():
            yield session


def page_offset(page_no: int, page_size: int) -> tuple[int, int]:
    """(offset, limit) of a 1-based page."""
    return (page_no - 1) * page_size, page_size


def without_none(body: dict[str, Any]) -> dict[str, Any]:
    """Drop fields the resource does not have, as the cloud omits them."""
    return {k: v for k, v in body.items() if v is not None}


@dataclass(frozen=True)
class Page:
    """Which slice of a list to answer: page paging or token paging.

    Token paging (``MaxResults``, ``NextToken``) takes priority when
    ``MaxResults`` is given; the token is an opaque encoding of the offset.
    """

    offset: int
    limit: int
    page_no: int
    page_size: int
    token_paging: bool

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Page:
        page_no, page_size = params["PageNo"], params["PageSize"]
        max_results = params.get("MaxResults")
        if max_results is None:
            offset, limit = page_offset(page_no, page_size)
            return cls(offset, limit, page_no, page_size, False)
        offset = decode_token(params.get("NextToken"))
        return cls(offset, max_results, page_no, page_size, True)

    def fields(self, total: int, returned: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "PageNo": self.page_no,
            "PageSize": self.page_size,
            "MaxResults": self.limit,
        }
        if self.token_paging and self.offset + returned < total:
            body["NextToken"] = encode_token(self.offset + returned)
        return body


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def decode_token(token: str | None) -> int:
    """The offset a NextToken stands for; InvalidParameter if it is not ours."""
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        text = ""
    prefix, _, number = text.partition(":")
    if prefix != "offset" or not number.isdigit() or len(number) > 12:
        raise invalid_parameter("NextToken", "is not a token this API issued.")
    return int(number)
