"""The distribution API of the embedded registry, driven over HTTP on loopback."""

from __future__ import annotations

import hashlib
import json
import os
import threading

import httpx
import pytest

from artifactd.oci import mediatypes as mt
from artifactd.store import repositories
from tests.registry.conftest import LiveRegistry


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def http(embedded: LiveRegistry):
    with httpx.Client(
        base_url=embedded.url, auth=(embedded.user, embedded.password)
    ) as client:
        yield client


def push_blob(http: httpx.Client, repo: str, data: bytes) -> str:
    digest = sha(data)
    response = http.post(
        f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data
    )
    assert response.status_code == 201, response.text
    return digest


def image_manifest(http: httpx.Client, repo: str, **extra) -> bytes:
    config = b'{"rootfs":{"type":"layers","diff_ids":[]}}'
    layer = os.urandom(1000)
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {
            "mediaType": mt.OCI_CONFIG,
            "digest": push_blob(http, repo, config),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": mt.OCI_LAYER_GZIP,
                "digest": push_blob(http, repo, layer),
                "size": len(layer),
            }
        ],
        **extra,
    }
    return json.dumps(manifest).encode()


def put_manifest(
    http: httpx.Client, repo: str, ref: str, data: bytes
) -> httpx.Response:
    return http.put(
        f"/v2/{repo}/manifests/{ref}",
        content=data,
        headers={"Content-Type": mt.OCI_MANIFEST},
    )


def error_code(response: httpx.Response) -> str:
    return response.json()["errors"][0]["code"]


def stored_blobs(embedded: LiveRegistry) -> list[str]:
    return sorted(
        p.name for p in (embedded.storage_root / "blobs").rglob("*") if p.is_file()
    )


def test_base_challenges_then_token_flow_grants_push(embedded: LiveRegistry) -> None:
    anonymous = httpx.get(embedded.url + "/v2/")
    assert anonymous.status_code == 401
    challenge = anonymous.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="http://127.0.0.1')
    realm = challenge.split('realm="')[1].split('"')[0]
    service = challenge.split('service="')[1].split('"')[0]
    token = httpx.get(
        realm,
        params={"service": service, "scope": "repository:team/app:pull,push"},
        auth=(embedded.user, embedded.password),
    ).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.get(embedded.url + "/v2/", headers=bearer).status_code == 200
    started = httpx.post(embedded.url + "/v2/team/app/blobs/uploads/", headers=bearer)
    assert started.status_code == 202
    # The token is scoped: another repository is refused.
    other = httpx.post(embedded.url + "/v2/team/other/blobs/uploads/", headers=bearer)
    assert other.status_code == 401
    assert 'error="insufficient_scope"' in other.headers["www-authenticate"]


def test_wrong_secret_gets_no_token(embedded: LiveRegistry) -> None:
    response = httpx.get(
        embedded.url + "/auth/token",
        params={"scope": "repository:team/app:pull"},
        auth=(embedded.user, "wrong"),
    )
    assert response.status_code == 401
    assert error_code(response) == "UNAUTHORIZED"


def test_unauthenticated_push_is_refused_and_creates_nothing(
    embedded: LiveRegistry,
) -> None:
    data = b"anonymous bytes"
    response = httpx.post(
        embedded.url + "/v2/team/app/blobs/uploads/",
        params={"digest": sha(data)},
        content=data,
    )
    assert response.status_code == 401
    assert error_code(response) == "UNAUTHORIZED"
    assert (
        'scope="repository:team/app:pull,push"' in response.headers["www-authenticate"]
    )
    assert stored_blobs(embedded) == []
    with embedded.service.sessions() as session:
        assert (
            repositories.find_repository(
                session, embedded.service.instance.id, "team", "app"
            )
            is None
        )


def test_blob_with_wrong_digest_is_refused_and_not_stored(http, embedded) -> None:
    data = b"the real bytes"
    response = http.post(
        "/v2/team/app/blobs/uploads/",
        params={"digest": sha(b"other bytes")},
        content=data,
    )
    assert response.status_code == 400
    assert error_code(response) == "DIGEST_INVALID"
    assert stored_blobs(embedded) == []
    assert http.head(f"/v2/team/app/blobs/{sha(data)}").status_code == 404
    assert list((embedded.storage_root / "uploads").iterdir()) == []


def test_blob_get_head_and_range(http) -> None:
    data = os.urandom(100_000)
    digest = push_blob(http, "team/app", data)
    head = http.head(f"/v2/team/app/blobs/{digest}")
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(data))
    assert head.headers["docker-content-digest"] == digest
    assert http.get(f"/v2/team/app/blobs/{digest}").content == data
    part = http.get(
        f"/v2/team/app/blobs/{digest}", headers={"Range": "bytes=1000-1999"}
    )
    assert part.status_code == 206
    assert part.content == data[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
    tail = http.get(f"/v2/team/app/blobs/{digest}", headers={"Range": "bytes=-10"})
    assert tail.content == data[-10:]
    beyond = http.get(
        f"/v2/team/app/blobs/{digest}", headers={"Range": "bytes=200000-"}
    )
    assert beyond.status_code == 416
    # A blob of another repository is not visible here.
    assert http.get(f"/v2/team/other/blobs/{digest}").status_code == 404


def test_chunked_upload_resumes_after_interruption(http) -> None:
    data = os.urandom(3 << 20)
    location = http.post("/v2/team/app/blobs/uploads/").headers["location"]
    first = http.patch(
        location, content=data[:1_000_000], headers={"Content-Range": "0-999999"}
    )
    assert first.status_code == 202
    assert first.headers["range"] == "0-999999"
    # A chunk that does not continue where the upload stands is refused...
    wrong = http.patch(location, content=data[5:10], headers={"Content-Range": "5-9"})
    assert wrong.status_code == 416
    # ...and the client learns where to resume from the status.
    status = http.get(location)
    assert status.status_code == 204
    offset = int(status.headers["range"].split("-")[1]) + 1
    assert offset == 1_000_000
    rest = http.patch(location, content=data[offset:])
    assert rest.status_code == 202
    done = http.put(location, params={"digest": sha(data)})
    assert done.status_code == 201
    assert http.get(f"/v2/team/app/blobs/{sha(data)}").content == data


def test_interrupted_upload_can_be_restarted(http) -> None:
    data = os.urandom(10_000)
    location = http.post("/v2/team/app/blobs/uploads/").headers["location"]
    http.patch(location, content=data[:5000])
    assert http.delete(location).status_code == 204
    assert error_code(http.get(location)) == "BLOB_UPLOAD_UNKNOWN"
    location = http.post("/v2/team/app/blobs/uploads/").headers["location"]
    assert (
        http.put(location, params={"digest": sha(data)}, content=data).status_code
        == 201
    )
    assert http.get(f"/v2/team/app/blobs/{sha(data)}").content == data


def test_concurrent_pushes_of_one_blob_both_succeed_and_store_it_once(
    http, embedded
) -> None:
    data = os.urandom(8 << 20)
    digest = sha(data)
    statuses = []

    def push(repo: str) -> None:
        with httpx.Client(
            base_url=embedded.url, auth=(embedded.user, embedded.password)
        ) as c:
            location = c.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
            c.patch(location, content=data)
            statuses.append(c.put(location, params={"digest": digest}).status_code)

    threads = [threading.Thread(target=push, args=(r,)) for r in ("team/a", "team/b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert statuses == [201, 201]
    assert stored_blobs(embedded) == [digest.split(":")[1]]
    for repo in ("team/a", "team/b"):
        assert http.get(f"/v2/{repo}/blobs/{digest}").content == data


def test_manifest_push_pull_by_tag_and_digest(http) -> None:
    data = image_manifest(http, "team/app")
    pushed = put_manifest(http, "team/app", "v1", data)
    assert pushed.status_code == 201
    digest = pushed.headers["docker-content-digest"]
    assert digest == sha(data)
    for ref in ("v1", digest):
        got = http.get(
            f"/v2/team/app/manifests/{ref}", headers={"Accept": mt.OCI_MANIFEST}
        )
        assert got.content == data
        assert got.headers["content-type"] == mt.OCI_MANIFEST
        assert got.headers["docker-content-digest"] == digest
    head = http.head("/v2/team/app/manifests/v1")
    assert head.headers["content-length"] == str(len(data))
    # Accept negotiation: a client that only takes Docker manifests is told no.
    docker_only = http.get(
        "/v2/team/app/manifests/v1", headers={"Accept": mt.DOCKER_MANIFEST}
    )
    assert docker_only.status_code == 404
    assert error_code(docker_only) == "MANIFEST_UNKNOWN"


def test_manifest_with_missing_blob_is_refused(http) -> None:
    data = image_manifest(http, "team/app")
    doc = json.loads(data)
    doc["layers"][0]["digest"] = sha(b"never pushed")
    response = put_manifest(http, "team/app", "v1", json.dumps(doc).encode())
    assert response.status_code == 400
    assert error_code(response) == "MANIFEST_BLOB_UNKNOWN"
    assert http.get("/v2/team/app/manifests/v1").status_code == 404


def test_malformed_manifest_and_digest_mismatch_are_refused(http) -> None:
    bad = put_manifest(http, "team/app", "v1", b"{not json")
    assert error_code(bad) == "MANIFEST_INVALID"
    data = image_manifest(http, "team/app")
    wrong = put_manifest(http, "team/app", sha(b"x"), data)
    assert error_code(wrong) == "DIGEST_INVALID"
    typed = http.put(
        "/v2/team/app/manifests/v1",
        content=data,
        headers={"Content-Type": mt.OCI_INDEX},
    )
    assert error_code(typed) == "MANIFEST_INVALID"


@pytest.mark.parametrize(
    "name", ["Team/App", "team//app", "-team/app", "team/app-", "team/a%20b"]
)
def test_names_that_break_the_grammar_are_refused(http, name: str) -> None:
    response = http.post(f"/v2/{name}/blobs/uploads/")
    assert response.status_code in (400, 404)
    assert error_code(response) == "NAME_INVALID"


def test_index_needs_its_manifests_and_deletes_work(http) -> None:
    child = image_manifest(http, "team/app")
    index = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_INDEX,
        "manifests": [
            {"mediaType": mt.OCI_MANIFEST, "digest": sha(child), "size": len(child)}
        ],
    }
    index_bytes = json.dumps(index).encode()
    headers = {"Content-Type": mt.OCI_INDEX}
    refused = http.put(
        "/v2/team/app/manifests/multi", content=index_bytes, headers=headers
    )
    assert error_code(refused) == "MANIFEST_BLOB_UNKNOWN"
    assert put_manifest(http, "team/app", sha(child), child).status_code == 201
    assert (
        http.put(
            "/v2/team/app/manifests/multi", content=index_bytes, headers=headers
        ).status_code
        == 201
    )
    assert http.delete("/v2/team/app/manifests/multi").status_code == 202
    assert http.get("/v2/team/app/manifests/multi").status_code == 404
    assert http.get(f"/v2/team/app/manifests/{sha(index_bytes)}").status_code == 200
    assert http.delete(f"/v2/team/app/manifests/{sha(index_bytes)}").status_code == 202
    assert http.get(f"/v2/team/app/manifests/{sha(index_bytes)}").status_code == 404


def test_tags_list_pages_with_link(http) -> None:
    data = image_manifest(http, "team/app")
    for tag in ["c", "a", "e", "b", "d"]:
        assert put_manifest(http, "team/app", tag, data).status_code == 201
    assert http.get("/v2/team/app/tags/list").json()["tags"] == [
        "a",
        "b",
        "c",
        "d",
        "e",
    ]
    page = http.get("/v2/team/app/tags/list", params={"n": 2})
    assert page.json()["tags"] == ["a", "b"]
    link = page.headers["link"]
    assert link == '</v2/team/app/tags/list?n=2&last=b>; rel="next"'
    following = http.get(link.split(">")[0][1:])
    assert following.json()["tags"] == ["c", "d"]
    last = http.get("/v2/team/app/tags/list", params={"n": 2, "last": "d"})
    assert last.json()["tags"] == ["e"] and "link" not in last.headers
    assert error_code(http.get("/v2/team/nothing/tags/list")) == "NAME_UNKNOWN"


def test_referrers_with_artifact_type_filter(http) -> None:
    subject = image_manifest(http, "team/app")
    subject_digest = put_manifest(http, "team/app", "v1", subject).headers[
        "docker-content-digest"
    ]
    subject_desc = {
        "mediaType": mt.OCI_MANIFEST,
        "digest": subject_digest,
        "size": len(subject),
    }
    sbom = image_manifest(
        http, "team/app", artifactType="application/spdx+json", subject=subject_desc
    )
    sig = image_manifest(
        http, "team/app", artifactType="application/vnd.dev.sig", subject=subject_desc
    )
    pushed = put_manifest(http, "team/app", sha(sbom), sbom)
    assert pushed.headers["oci-subject"] == subject_digest
    put_manifest(http, "team/app", sha(sig), sig)
    listed = http.get(f"/v2/team/app/referrers/{subject_digest}")
    assert listed.headers["content-type"] == mt.OCI_INDEX
    found = {d["digest"]: d["artifactType"] for d in listed.json()["manifests"]}
    assert found == {
        sha(sbom): "application/spdx+json",
        sha(sig): "application/vnd.dev.sig",
    }
    filtered = http.get(
        f"/v2/team/app/referrers/{subject_digest}",
        params={"artifactType": "application/spdx+json"},
    )
    assert filtered.headers["oci-filters-applied"] == "artifactType"
    assert [d["digest"] for d in filtered.json()["manifests"]] == [sha(sbom)]
    none = http.get(f"/v2/team/app/referrers/{sha(b'nothing')}")
    assert none.status_code == 200 and none.json()["manifests"] == []


def test_catalog_lists_repositories(http) -> None:
    for repo in ("team/b", "team/a", "other/c"):
        push_blob(http, repo, b"x")
    assert http.get("/v2/_catalog").json()["repositories"] == [
        "other/c",
        "team/a",
        "team/b",
    ]
    page = http.get("/v2/_catalog", params={"n": 1})
    assert page.json()["repositories"] == ["other/c"]
    assert "last=other%2Fc" in page.headers["link"]
    assert httpx.get(http.base_url.join("/v2/_catalog")).status_code == 401


def test_cross_repository_mount(http) -> None:
    digest = push_blob(http, "team/a", b"shared layer")
    mounted = http.post(
        "/v2/team/b/blobs/uploads/", params={"mount": digest, "from": "team/a"}
    )
    assert mounted.status_code == 201
    assert mounted.headers["location"] == f"/v2/team/b/blobs/{digest}"
    assert http.get(f"/v2/team/b/blobs/{digest}").content == b"shared layer"
    missing = http.post(
        "/v2/team/b/blobs/uploads/", params={"mount": sha(b"none"), "from": "team/a"}
    )
    assert missing.status_code == 202


def test_public_repository_allows_anonymous_pull_only(http, embedded) -> None:
    data = image_manifest(http, "team/public")
    put_manifest(http, "team/public", "v1", data)
    put_manifest(http, "team/private", "v1", image_manifest(http, "team/private"))
    service = embedded.service
    with service.sessions.begin() as session:
        repo = repositories.find_repository(
            session, service.instance.id, "team", "public"
        )
        assert repo is not None and repo.repo_type == "PRIVATE"
        repo.repo_type = "PUBLIC"
    service.registry.authorizer.policy._public.clear()
    anonymous = httpx.Client(base_url=embedded.url)
    assert anonymous.get("/v2/team/public/manifests/v1").content == data
    assert anonymous.get("/v2/team/private/manifests/v1").status_code == 401
    assert anonymous.post("/v2/team/public/blobs/uploads/").status_code == 401


def test_push_creates_repository_in_namespace_with_defaults(http, embedded) -> None:
    push_blob(http, "fresh/app", b"x")
    service = embedded.service
    with service.sessions() as session:
        repo = repositories.find_repository(
            session, service.instance.id, "fresh", "app"
        )
        assert repo is not None and repo.id.startswith("crr-")
        assert repo.repo_type == "PRIVATE"
        namespace = repositories.find_namespace(
            session, service.instance.id, name="fresh"
        )
        namespace.auto_create_repo = False
        session.commit()
    service.registry.authorizer.policy._known.clear()
    refused = http.post("/v2/fresh/other/blobs/uploads/")
    assert refused.status_code == 403
    assert error_code(refused) == "DENIED"
    # Names outside NAMESPACE/REPOSITORY cannot be created.
    assert error_code(http.post("/v2/toplevel/blobs/uploads/")) == "DENIED"


def test_blob_delete_unlinks_it_from_one_repository_only(http) -> None:
    digest = push_blob(http, "team/a", b"to delete")
    http.post("/v2/team/b/blobs/uploads/", params={"mount": digest, "from": "team/a"})
    deleted = http.delete(f"/v2/team/a/blobs/{digest}")
    assert deleted.status_code == 202
    assert http.head(f"/v2/team/a/blobs/{digest}").status_code == 404
    assert http.get(f"/v2/team/b/blobs/{digest}").content == b"to delete"
    again = http.delete(f"/v2/team/a/blobs/{digest}")
    assert again.status_code == 404 and error_code(again) == "BLOB_UNKNOWN"


def test_docker_manifest_list_is_stored_and_negotiated(http) -> None:
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"diff_ids":[]}}'
    layer = os.urandom(500)
    child = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.DOCKER_MANIFEST,
            "config": {
                "mediaType": mt.DOCKER_CONFIG,
                "digest": push_blob(http, "team/app", config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": mt.DOCKER_LAYER_GZIP,
                    "digest": push_blob(http, "team/app", layer),
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    stored = http.put(
        f"/v2/team/app/manifests/{sha(child)}",
        content=child,
        headers={"Content-Type": mt.DOCKER_MANIFEST},
    )
    assert stored.status_code == 201
    listing = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.DOCKER_MANIFEST_LIST,
            "manifests": [
                {
                    "mediaType": mt.DOCKER_MANIFEST,
                    "digest": sha(child),
                    "size": len(child),
                    "platform": {"architecture": "amd64", "os": "linux"},
                }
            ],
        }
    ).encode()
    pushed = http.put(
        "/v2/team/app/manifests/multi",
        content=listing,
        headers={"Content-Type": mt.DOCKER_MANIFEST_LIST},
    )
    assert pushed.status_code == 201
    assert pushed.headers["docker-content-digest"] == sha(listing)
    docker_client = {"Accept": f"{mt.DOCKER_MANIFEST}, {mt.DOCKER_MANIFEST_LIST}"}
    got = http.get("/v2/team/app/manifests/multi", headers=docker_client)
    assert got.content == listing
    assert got.headers["content-type"] == mt.DOCKER_MANIFEST_LIST
    # A client that reads only single OCI manifests is not handed a list.
    oci_only = http.get(
        "/v2/team/app/manifests/multi", headers={"Accept": mt.OCI_MANIFEST}
    )
    assert oci_only.status_code == 404 and error_code(oci_only) == "MANIFEST_UNKNOWN"
    child_got = http.get(f"/v2/team/app/manifests/{sha(child)}", headers=docker_client)
    assert child_got.headers["content-type"] == mt.DOCKER_MANIFEST


def test_request_errors_carry_the_spec_codes(http) -> None:
    data = image_manifest(http, "team/app")
    bad_tag = put_manifest(http, "team/app", "-starts-with-dash", data)
    assert bad_tag.status_code == 400 and error_code(bad_tag) == "TAG_INVALID"
    long_tag = put_manifest(http, "team/app", "t" * 129, data)
    assert error_code(long_tag) == "TAG_INVALID"
    wrong_method = http.post("/v2/team/app/manifests/v1", content=data)
    assert wrong_method.status_code == 405
    assert error_code(wrong_method) == "UNSUPPORTED"
    bad_page = http.get("/v2/team/app/tags/list", params={"n": "many"})
    assert bad_page.status_code == 400
    assert error_code(bad_page) == "PAGINATION_NUMBER_INVALID"
    no_digest = http.post("/v2/team/app/blobs/uploads/")
    finish = http.put(no_digest.headers["location"], content=b"x")
    assert finish.status_code == 400 and error_code(finish) == "DIGEST_INVALID"
    assert http.get("/v2/team/app/tags/list").json()["tags"] == []
