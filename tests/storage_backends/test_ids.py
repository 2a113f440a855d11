"""Log ids and blob names at the storage boundary (no backend needed)."""

import pytest

from storage_backends import (
    MAX_LOG_ID_LENGTH,
    InvalidIdError,
    is_system_id,
    validate_blob_name,
    validate_log_id,
)
from storage_backends._ids import is_listable_log_id
from storage_backends.conformance import INVALID_IDS


@pytest.mark.parametrize("good", ["a", "wf-1", "My_Workflow.v2", "0", "a_", "x" * MAX_LOG_ID_LENGTH])
def test_user_ids(good):
    assert validate_log_id(good) == good
    assert not is_system_id(good)


@pytest.mark.parametrize("good", ["_status_index", "_a", "_0", "_a.b-c_d"])
def test_system_ids(good):
    assert validate_log_id(good) == good
    assert is_system_id(good)


@pytest.mark.parametrize("bad", INVALID_IDS + ["_", "__x", "_.x", "_-x", "_/x", "_..x", "_a..b",
                                               "_" + "x" * MAX_LOG_ID_LENGTH, None, 42])
def test_invalid_log_ids(bad):
    with pytest.raises(InvalidIdError) as info:
        validate_log_id(bad)
    assert "workflow id" in str(info.value)


def test_the_message_says_what_is_allowed():
    with pytest.raises(InvalidIdError) as info:
        validate_log_id("__x")
    assert "'_'" in str(info.value) and "system" in str(info.value)


def test_blob_names_take_no_leading_underscore():
    with pytest.raises(InvalidIdError):
        validate_blob_name("_x")
    assert validate_blob_name("x_") == "x_"


def test_is_system_id_of_non_strings():
    assert not is_system_id(None)


@pytest.mark.parametrize("name, listable", [
    ("wf-1", True), ("_status_index", False), ("__x", False), (".deleted-wf-1-abc", False),
    (".hidden", False), ("caf\u00e9", False), ("a b", False), ("", False),
])
def test_is_listable_log_id(name, listable):
    assert is_listable_log_id(name) is listable
