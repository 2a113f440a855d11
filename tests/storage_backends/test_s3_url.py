"""ray.workflow's S3 storage URLs (``s3://bucket/path?region=...&endpoint_override=...``), and where
system logs live in a bucket.

ray.workflow 2.47 opened ``ray.init(storage=...)`` with pyarrow's ``FileSystem.from_uri`` (see
``ray/_private/storage.py``: it also appended ``allow_bucket_creation=true`` to every s3 URI).
pyarrow's ``S3Options::FromUri`` takes ``region``, ``scheme``, ``endpoint_override``,
``allow_bucket_creation``, ``allow_bucket_deletion``, ``allow_delayed_open``,
``tls_ca_file_path``, ``tls_ca_dir_path``, ``tls_verify_certificates`` and ``smart_defaults``,
and refuses any other parameter ("Unexpected query parameter in S3 URI").
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from storage_backends import BucketNotFoundError, StorageURLError, open_storage, system_id
from storage_backends._s3_url import URL_PARAMETERS
from tests.storage_backends.test_s3_specific import all_keys, bucket_and_prefix, new_id


@pytest.mark.parametrize("query, options", [
    ("region=eu-west-1", {"region_name": "eu-west-1"}),
    ("endpoint_override=localhost:9000", {"endpoint_url": "https://localhost:9000"}),
    ("endpoint_override=localhost:9000&scheme=http", {"endpoint_url": "http://localhost:9000"}),
    ("scheme=http&endpoint_override=http://minio:9000", {"endpoint_url": "http://minio:9000"}),
    ("scheme=http", {"use_ssl": False}),
    ("scheme=https", {"use_ssl": True}),
    ("allow_bucket_creation=true", {"allow_bucket_creation": True}),
    ("allow_bucket_creation=FALSE", {"allow_bucket_creation": False}),
    ("allow_bucket_creation=1&allow_bucket_deletion=0", {"allow_bucket_creation": True}),
    ("tls_verify_certificates=false", {"verify": False}),
    ("tls_verify_certificates=true", {}),
    ("tls_ca_file_path=/etc/ca.pem", {"verify": "/etc/ca.pem"}),
    ("tls_ca_file_path=/etc/ca.pem&tls_verify_certificates=false", {"verify": False}),
    ("allow_delayed_open=true&smart_defaults=latest", {}),
    ("", {}),
])
def test_query_parameters_become_options(query, options):
    storage = open_storage(f"s3://bucket/some/path?{query}" if query else "s3://bucket/some/path")
    assert storage._options == options
    assert storage.url == "s3://bucket/some/path"  # the query is configuration, not the storage's name
    assert storage.prefix == "some/path"


def test_every_ray_workflow_parameter_is_known():
    assert set(URL_PARAMETERS) | {"tls_ca_dir_path"} == {
        "region", "scheme", "endpoint_override", "allow_bucket_creation", "allow_bucket_deletion",
        "allow_delayed_open", "tls_ca_file_path", "tls_ca_dir_path", "tls_verify_certificates",
        "smart_defaults"}


def test_unknown_parameters_are_named_and_the_valid_ones_listed():
    with pytest.raises(StorageURLError) as info:
        open_storage("s3://bucket/p?region=us-east-1&endpoint=x&access_key=y")
    message = str(info.value)
    assert "'access_key', 'endpoint'" in message and "s3://bucket/p?" in message
    for name in URL_PARAMETERS:
        assert name in message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("query, words", [
    ("region=a&region=b", ["'region'", "more than once"]),
    ("allow_bucket_creation=maybe", ["allow_bucket_creation='maybe'", "true or false"]),
    ("tls_verify_certificates=yes", ["tls_verify_certificates='yes'", "true or false"]),
    ("scheme=ftp", ["scheme='ftp'", "'http' or 'https'"]),
    ("endpoint_override=", ["'endpoint_override'", "empty"]),
    ("region=", ["'region'", "empty"]),
    ("tls_ca_dir_path=/etc/ssl/certs", ["'tls_ca_dir_path'", "not supported", "tls_ca_file_path"]),
])
def test_bad_parameter_values_say_what_is_wrong(query, words):
    with pytest.raises(StorageURLError) as info:
        open_storage(f"s3://bucket/p?{query}")
    for word in words:
        assert word in str(info.value)


def test_url_and_options_must_agree():
    assert open_storage("s3://b/p?region=x", region_name="x")._options == {"region_name": "x"}
    with pytest.raises(StorageURLError, match="disagree on endpoint_url, region_name"):
        open_storage("s3://b/p?region=x&endpoint_override=h:1&scheme=http",
                     region_name="y", endpoint_url="http://other:1")


@pytest.mark.parametrize("url, words", [
    ("s3://key:secret@bucket/p?region=x", ["must not hold credentials"]),
    ("s3://bucket/p#frag", ["fragment"]),
    ("s3:///p?region=x", ["no valid bucket"]),
])
def test_other_url_errors_stay(url, words):
    with pytest.raises(StorageURLError) as info:
        open_storage(url)
    for word in words:
        assert word in str(info.value)
    assert "secret" not in str(info.value)


def test_a_local_url_takes_no_query(tmp_path):
    with pytest.raises(StorageURLError, match="no options"):
        open_storage(f"file://{tmp_path}?region=x")


# --- against a real moto_server ----------------------------------------------------------------


async def test_endpoint_and_region_from_the_query_reach_the_server(moto_server, s3_url, s3_admin):
    """No endpoint_url option and no $AWS_ENDPOINT_URL: only the query says where moto is."""
    host = urlsplit(moto_server).netloc
    storage = open_storage(f"{s3_url}?region=us-east-1&endpoint_override={host}&scheme=http")
    try:
        log = new_id()
        await storage.append(log, [b"a", b"b"], 0)
        assert [r.data for r in await storage.read_all(log)] == [b"a", b"b"]
        assert await storage.list_logs() == [log]
    finally:
        await storage.close()
    bucket, prefix = bucket_and_prefix(s3_url)
    assert all_keys(s3_admin, bucket) == [f"{prefix}/logs/{log}/{0:020d}"]


async def test_allow_bucket_creation_creates_a_missing_bucket(moto_server, s3_admin):
    bucket = "created-" + new_id()
    host = urlsplit(moto_server).netloc
    refused = open_storage(f"s3://{bucket}/wf?endpoint_override={host}&scheme=http")
    with pytest.raises(BucketNotFoundError):
        await refused.list_logs()
    await refused.close()
    storage = open_storage(f"s3://{bucket}/wf?endpoint_override={host}&scheme=http&allow_bucket_creation=true")
    try:
        assert await storage.list_logs() == []
        s3_admin.head_bucket(Bucket=bucket)  # it exists now
        await storage.append("w", [b"x"], 0)
        # A second opener finds it there (no error for a bucket it already owns).
        again = open_storage(f"s3://{bucket}/wf?endpoint_override={host}&scheme=http&allow_bucket_creation=true")
        assert await again.list_logs() == ["w"]
        await again.close()
    finally:
        await storage.close()


async def test_system_logs_live_under_their_own_prefix(s3_url, s3_options, s3_admin):
    storage = open_storage(s3_url, **s3_options)
    try:
        await storage.append(system_id("status_index"), [b"s"], 0)
        await storage.put_blob(system_id("status_index"), "snapshot-v2", b"snap")
        await storage.append("_status_index", [b"u"], 0)  # a user log of the old system name
    finally:
        await storage.close()
    bucket, prefix = bucket_and_prefix(s3_url)
    assert sorted(all_keys(s3_admin, bucket)) == [
        f"{prefix}/logs/_status_index/{0:020d}",
        f"{prefix}/system/blobs/status_index/snapshot-v2",
        f"{prefix}/system/logs/status_index/{0:020d}",
    ]
