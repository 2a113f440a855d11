"""The conformance suite against the local-disk backend."""

import pytest

from storage_backends.conformance import StorageConformance


class TestLocalConformance(StorageConformance):
    @pytest.fixture
    def storage_url(self, tmp_path):
        return f"file://{tmp_path}/store"
