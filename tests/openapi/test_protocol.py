"""Decoding requests: the same parameters the standard library would read."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from hypothesis import given
from hypothesis import strategies as st

from artifactd.openapi.protocol import build_request, decode_params
from artifactd.openapi.render import render_xml


@given(st.text(alphabet=st.sampled_from("ab=&%+2F0Cü;x "), max_size=30))
def test_decoding_matches_parse_qsl_on_any_text(raw):
    assert decode_params(raw) == dict(
        parse_qsl(raw, keep_blank_values=True, errors="replace")
    )


@given(st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=12)))
def test_encoded_parameters_round_trip(params):
    assert decode_params(urlencode(params)) == params


def test_form_body_counts_only_with_the_form_content_type():
    headers = [(b"content-type", b"application/x-www-form-urlencoded; charset=UTF-8")]
    request = build_request("post", "/", b"Action=A&X=1", headers, b"X=2&Y=+3")
    assert request.params == {"Action": "A", "X": "2", "Y": " 3"}
    plain = build_request(
        "POST", "/", b"X=1", [(b"content-type", b"text/plain")], b"X=2"
    )
    assert plain.params == {"X": "1"}


def test_xml_repeats_list_items_and_escapes_text():
    xml = render_xml("ListResponse", {"Items": [{"A": "x<y"}, {"A": True}], "N": None})
    assert xml.endswith(
        b"<ListResponse><Items><A>x&lt;y</A></Items><Items><A>true</A></Items>"
        b"<N></N></ListResponse>"
    )
