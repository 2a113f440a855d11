"""Log ids and blob names at the storage boundary (no backend needed)."""

import pytest

from storage_backends import (
    MAX_LOG_ID_LENGTH,
    InvalidIdError,
    is_system_id,
    system_id,
    system_name,
    validate_blob_name,
    validate_log_id,
)
from storage_backends._ids import is_listable_log_id
from storage_backends.conformance import INVALID_IDS


@pytest.mark.parametrize("good", ["a", "wf-1", "My_Workflow.v2", "0", "a_", "x" * MAX_LOG_ID_LENGTH,
                                  "_", "__function_chain_test", "_status_index", "_a.b-c_d", "system"])
def test_user_ids(good):
    assert validate_log_id(good) == good
    assert not is_system_id(good) and system_name(good) is None


@pytest.mark.parametrize("name", ["status_index", "a", "0", "a.b-c_d", "x" * (MAX_LOG_ID_LENGTH - 7)])
def test_system_ids(name):
    log_id = system_id(name)
    assert log_id == "system:" + name
    assert validate_log_id(log_id) == log_id
    assert is_system_id(log_id) and system_name(log_id) == name


@pytest.mark.parametrize("bad", ["", "_x", ".x", "-x", "a/b", "a:b", "a..b", "x" * (MAX_LOG_ID_LENGTH - 6), None])
def test_system_id_wants_a_plain_name(bad):
    with pytest.raises(InvalidIdError) as info:
        system_id(bad)
    assert "system log name" in str(info.value)


@pytest.mark.parametrize("bad", INVALID_IDS + ["_..x", "_a..b", "_/x", "_ x", "a:b", "system:", "system:_x",
                                               "System:x", "_" + "x" * MAX_LOG_ID_LENGTH, None, 42])
def test_invalid_log_ids(bad):
    with pytest.raises(InvalidIdError) as info:
        validate_log_id(bad)
    assert "workflow id" in str(info.value)


def test_the_message_says_what_is_allowed():
    with pytest.raises(InvalidIdError) as info:
        validate_log_id(".x")
    assert "'_'" in str(info.value) and "starting with a letter, digit or '_'" in str(info.value)


def test_blob_names_take_no_leading_underscore():
    with pytest.raises(InvalidIdError):
        validate_blob_name("_x")
    assert validate_blob_name("x_") == "x_"


def test_is_system_id_of_non_strings():
    assert not is_system_id(None)


@pytest.mark.parametrize("name, listable", [
    ("wf-1", True), ("_status_index", True), ("__x", True), ("system:status_index", False),
    (".system", False), (".deleted-wf-1-abc", False),
    (".hidden", False), ("caf\u00e9", False), ("a b", False), ("", False),
])
def test_is_listable_log_id(name, listable):
    assert is_listable_log_id(name) is listable
