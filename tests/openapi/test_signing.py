"""Signature checks against requests recorded from the real SDKs."""

from __future__ import annotations

import gc
import hmac
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from artifactd.openapi.errors import GatewayError
from artifactd.openapi.protocol import build_request, decode_params
from artifactd.openapi.signing import (
    NonceCache,
    SignatureVerifier,
    canonical_query,
    canonical_wire_query,
    hmac_sha1_pads,
    parse_timestamp,
    pct,
)

VECTORS = [
    json.loads(line)
    for line in (Path(__file__).parent / "data" / "sdk_vectors.jsonl").open()
]
KEY_ID = "LTAI5tFakeAccessKeyId01"
SECRET = "FakeSecret/For+Local=Tests~Only"


def request_of(vector: dict, query: str | None = None, body: str | None = None):
    headers = [(k.encode(), v.encode()) for k, v in vector["headers"]]
    raw_query = vector["raw_query"] if query is None else query
    raw_body = vector["body"] if body is None else body
    return build_request(
        vector["method"], vector["path"], raw_query.encode(), headers, raw_body.encode()
    )


def signed_at(vector: dict) -> float:
    request = request_of(vector)
    stamp = request.params.get("Timestamp") or request.headers["x-acs-date"]
    return parse_timestamp(stamp)


def verifier_at(now: float, secrets: dict | None = None) -> SignatureVerifier:
    return SignatureVerifier((secrets or {KEY_ID: SECRET}).get, clock=lambda: now)


def refusal(verifier: SignatureVerifier, request) -> str:
    with pytest.raises(GatewayError) as info:
        verifier.verify(request)
    return info.value.code


@pytest.mark.parametrize(
    "vector", VECTORS, ids=[f"{v['flavour']}-{v['action']}" for v in VECTORS]
)
def test_sdk_vector_verifies(vector):
    verifier = verifier_at(signed_at(vector))
    assert verifier.verify(request_of(vector)) == KEY_ID


@pytest.mark.parametrize(
    "vector", VECTORS, ids=[f"{v['flavour']}-{v['action']}" for v in VECTORS]
)
def test_sdk_vector_refused_with_another_secret(vector):
    verifier = verifier_at(signed_at(vector), {KEY_ID: "another"})
    with pytest.raises(GatewayError) as info:
        verifier.verify(request_of(vector))
    assert info.value.code == "SignatureDoesNotMatch"
    assert info.value.status == 400
    # The core SDK splits this message on ':' and reads what follows.
    assert info.value.message.count("is:") == 1
    assert info.value.message.split(":", 1)[1]


def test_tampered_parameter_is_refused():
    vector = next(v for v in VECTORS if v["flavour"] == "tea-v3")
    tampered = vector["raw_query"].replace("cri-demo0000", "cri-demo0001")
    verifier = verifier_at(signed_at(vector))
    assert refusal(verifier, request_of(vector, query=tampered)) == (
        "SignatureDoesNotMatch"
    )


def test_tampered_form_body_is_refused():
    vector = next(v for v in VECTORS if v["body"] and v["flavour"].startswith("core"))
    verifier = verifier_at(signed_at(vector))
    body = vector["body"].replace("i2a", "i2b")
    assert refusal(verifier, request_of(vector, body=body)) == "SignatureDoesNotMatch"


def test_acs3_body_hash_must_match():
    vector = next(v for v in VECTORS if v["flavour"] == "tea-v3")
    verifier = verifier_at(signed_at(vector))
    assert refusal(verifier, request_of(vector, body="x=1")) == "IncompleteSignature"


def test_acs3_unsigned_acs_header_is_refused():
    vector = dict(next(v for v in VECTORS if v["flavour"] == "tea-v3"))
    vector["headers"] = [*vector["headers"], ["x-acs-extra", "sneaky"]]
    verifier = verifier_at(signed_at(vector))
    assert refusal(verifier, request_of(vector)) == "IncompleteSignature"


def test_skew_limits_are_fifteen_minutes_both_ways():
    vector = VECTORS[0]
    at = signed_at(vector)
    assert verifier_at(at + 900).verify(request_of(vector)) == KEY_ID
    assert verifier_at(at - 900).verify(request_of(vector)) == KEY_ID
    assert (
        refusal(verifier_at(at + 901), request_of(vector)) == "InvalidTimeStamp.Expired"
    )
    assert (
        refusal(verifier_at(at - 901), request_of(vector)) == "InvalidTimeStamp.Expired"
    )


@pytest.mark.parametrize(
    "stamp", ["2026-12-03 18:07:11", "2026-13-03T18:07:11Z", "yesterday", ""]
)
def test_badly_formatted_timestamps(stamp):
    with pytest.raises(GatewayError) as info:
        parse_timestamp(stamp)
    assert info.value.code == "InvalidTimeStamp.Format"


def test_nonce_replay_is_refused_and_bad_signature_does_not_burn_it():
    vector = next(v for v in VECTORS if v["flavour"] == "core-get")
    at = signed_at(vector)
    nonces = NonceCache()
    wrong = SignatureVerifier({KEY_ID: "wrong"}.get, nonces, clock=lambda: at)
    right = SignatureVerifier({KEY_ID: SECRET}.get, nonces, clock=lambda: at)
    assert refusal(wrong, request_of(vector)) == "SignatureDoesNotMatch"
    assert right.verify(request_of(vector)) == KEY_ID
    assert refusal(right, request_of(vector)) == "SignatureNonceUsed"


def test_nonce_cache_forgets_after_window_and_bounds_memory():
    cache = NonceCache(window_seconds=10, max_entries=2)
    cache.claim("k", "a", now=0, signed_at=0)
    cache.claim("k", "b", now=1, signed_at=1)
    with pytest.raises(GatewayError) as info:
        cache.claim("k", "c", now=2, signed_at=2)
    assert info.value.code == "Throttling.User"
    assert info.value.retry_after is not None
    with pytest.raises(GatewayError):
        cache.claim("k", "a", now=9, signed_at=9)
    # "a" is valid until 10 and kept to the next whole second, never less.
    with pytest.raises(GatewayError):
        cache.claim("k", "a", now=10.5, signed_at=10.5)
    cache.claim("k", "a", now=11, signed_at=11)
    assert len(cache) == 2


def test_nonce_dated_in_future_is_kept_until_its_timestamp_expires():
    cache = NonceCache(window_seconds=10)
    cache.claim("k", "n", now=0, signed_at=9)
    with pytest.raises(GatewayError):
        cache.claim("k", "n", now=15, signed_at=9)


def test_held_nonces_add_nothing_to_the_garbage_collectors_passes():
    # Each full collection visits what tracked objects refer to; a cache
    # that held its nonces that way would stall the server longer the more
    # nonces it holds (millions at a few thousand requests per second).
    def visited() -> int:
        return sum(len(gc.get_referents(o)) for o in gc.get_objects())

    cache = NonceCache(journaled=True)
    gc.collect()
    before = visited()
    for n in range(20_000):
        cache.claim("k", f"nonce-{n}", now=1000.0, signed_at=1000.0 + n % 5)
    cache.drain()
    gc.collect()
    assert len(cache) == 20_000
    assert visited() - before < 100


def test_missing_v1_fields_are_named():
    vector = next(v for v in VECTORS if v["flavour"] == "tea-v1")
    query = "&".join(
        p for p in vector["raw_query"].split("&") if not p.startswith("SignatureNonce=")
    )
    verifier = verifier_at(signed_at(vector))
    with pytest.raises(GatewayError) as info:
        verifier.verify(request_of(vector, query=query))
    assert info.value.code == "MissingParameter"
    assert '"SignatureNonce"' in info.value.message


# Query strings built from pieces that are or look canonical: unreserved
# characters, escapes that must be there, escapes that must not ("%41" is
# "A"), lower-case hex, "+", bytes of UTF-8 and broken UTF-8.
_PIECES = st.sampled_from(
    [
        "a",
        "Z",
        "0",
        "-",
        ".",
        "_",
        "~",
        "%3A",
        "%2F",
        "%2B",
        "%20",
        "%41",
        "%7e",
        "%3a",
        "+",
        "%E4%B8%AD",
        "%FF",
        "Signature",
        "SignatureNonce",
        "A1",
        "A-",
    ]
)
_TEXT = st.lists(_PIECES, max_size=4).map("".join)
_PAIR = st.one_of(
    st.tuples(_TEXT, _TEXT).map("=".join), _TEXT, st.just(""), st.just("a=b=c")
)


@settings(max_examples=2000, deadline=None)
@given(st.lists(_PAIR, max_size=8).map("&".join))
def test_wire_canonical_query_agrees_with_encoding_the_decoded_values(raw):
    """Signing the wire text is only a shortcut: whenever it is taken, it
    gives the very string that encoding the decoded parameters gives."""
    decoded = decode_params(raw)
    shortcut = canonical_wire_query(raw, decoded)
    if shortcut is not None:
        assert shortcut == canonical_query(decoded, skip="Signature")


_ASCII = st.characters(max_codepoint=127)


@settings(max_examples=500, deadline=None)
@given(
    st.dictionaries(
        st.text(_ASCII, min_size=1, max_size=8),
        st.text(_ASCII, max_size=12),
        min_size=1,
        max_size=8,
    )
)
def test_sdk_encoded_ascii_queries_take_the_shortcut(params):
    raw = "&".join(f"{pct(k)}={pct(v)}" for k, v in params.items())
    shortcut = canonical_wire_query(raw, decode_params(raw))
    assert shortcut == canonical_query(params, skip="Signature")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.binary(max_size=2000))
def test_the_kept_hmac_pads_give_the_standard_hmac(key, message):
    inner, outer = (pad.copy() for pad in hmac_sha1_pads(key))
    inner.update(message)
    outer.update(inner.digest())
    assert outer.digest() == hmac.digest(key, message, "sha1")
