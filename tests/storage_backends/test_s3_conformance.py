"""The conformance suite against the S3 backend, over HTTP to a real moto_server."""

import pytest

from storage_backends.conformance import StorageConformance


class TestS3Conformance(StorageConformance):
    # The endpoint is only known at run time, and child processes (the
    # multi-process race) get ``storage_options`` at class level; so it travels
    # the standard way, in $AWS_ENDPOINT_URL_S3, which spawned children inherit
    # and botocore reads. That also exercises the env var support.
    storage_options: dict = {}

    @pytest.fixture(autouse=True)
    def _endpoint_from_env(self, moto_server, monkeypatch):
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_server)

    @pytest.fixture
    def storage_url(self, s3_url):
        return s3_url
