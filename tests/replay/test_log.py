"""load_state on real local logs: decoding whole batches gives exactly the one-by-one outcome, errors included."""

import msgspec
import pytest

import replay._log
from replay import EventRecordError, IllegalTransitionError, UnknownEventError, encode_event, fold, load_state
from storage_backends import LocalStorage, LogCorruptedError
from storage_backends._framing import HEADER_SIZE
from tests.replay.logs import SCENARIOS, LogBuilder, write_log


@pytest.fixture(params=["bulk", "one-by-one"])
def chunk(request, monkeypatch):
    """Both ways load_state decodes a batch: in one call, or record by record (its fallback)."""
    if request.param == "one-by-one":
        monkeypatch.setattr(replay._log, "decode_concatenated", lambda data, count: None)
    return request.param


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_load_state_equals_fold_whatever_the_chunk(name, chunk, tmp_path):
    events = SCENARIOS[name]("w").events
    await write_log(str(tmp_path), {}, "w", events, batches=[4, 1, 7])
    assert await load_state(LocalStorage(str(tmp_path)), "w") == fold(events)


async def test_unknown_log_gives_an_empty_state(tmp_path):
    assert (await load_state(LocalStorage(str(tmp_path)), "nothing")).status is None


async def test_an_illegal_event_before_damage_is_what_is_raised(chunk, tmp_path):
    b = LogBuilder("w").submit().run("r").schedule("a").start("a").complete("a", 1).complete("a", 1)
    b.schedule("b").start("b")
    await write_log(str(tmp_path), {}, "w", b.events, batches=[3, 3, 2])
    _flip_byte_in_last_batch(tmp_path / "w" / "events.log", last_batch_size=2)
    with pytest.raises(IllegalTransitionError) as info:
        await load_state(LocalStorage(str(tmp_path)), "w")
    assert info.value.seq == 5


async def test_damage_is_raised_after_a_legal_prefix(chunk, tmp_path):
    b = LogBuilder("w").submit().run("r").schedule("a").start("a").complete("a", 1).schedule("b")
    await write_log(str(tmp_path), {}, "w", b.events, batches=[3, 2, 1])
    _flip_byte_in_last_batch(tmp_path / "w" / "events.log", last_batch_size=1, middle=True)
    with pytest.raises(LogCorruptedError) as info:
        await load_state(LocalStorage(str(tmp_path)), "w")
    assert info.value.log_id == "w" and "checksum" in info.value.reason


async def test_an_undecodable_record_names_its_seq_and_offset(chunk, tmp_path):
    storage = LocalStorage(str(tmp_path))
    good = [encode_event(e) for e in LogBuilder("w").submit().run("r").events]
    await storage.append("w", good[:1], 0)
    await storage.append("w", [good[1], b"\x01\xc1"], 1)
    with pytest.raises(EventRecordError) as info:
        await load_state(storage, "w")
    assert (info.value.workflow_id, info.value.seq) == ("w", 2)
    assert info.value.offset == (await storage.read_all("w"))[1].offset > 0


async def test_an_unknown_event_type_in_a_batch_names_its_tag_and_seq(chunk, tmp_path):
    storage = LocalStorage(str(tmp_path))
    good = [encode_event(e) for e in LogBuilder("w").submit().run("r").schedule("a").events]
    future = b"\x01" + msgspec.msgpack.encode({"type": "task.paused", "ts": 1.0, "task_id": "a"})
    await storage.append("w", [good[0], good[1], future, good[2]], 0)
    with pytest.raises(EventRecordError) as info:
        await load_state(storage, "w")
    assert info.value.seq == 2 and isinstance(info.value.cause, UnknownEventError)
    assert info.value.cause.tag == "task.paused"


async def test_records_of_an_older_format_version_in_a_batch_are_refused(chunk, tmp_path):
    storage = LocalStorage(str(tmp_path))
    good = [encode_event(e) for e in LogBuilder("w").submit().run("r").events]
    await storage.append("w", [good[0], b"\x02" + good[1][1:]], 0)
    with pytest.raises(EventRecordError) as info:
        await load_state(storage, "w")
    assert info.value.seq == 1 and "format version 2" in str(info.value)


def _flip_byte_in_last_batch(path, last_batch_size: int, middle: bool = False) -> None:
    """Damage the last batch, or (``middle``) the one before it.

    A bad last batch would be a torn tail, which is "not written" by design;
    so after damaging the last batch, a copy of it is appended to make the
    damage sit in the middle of the log.
    """
    data = bytearray(path.read_bytes())
    offset = 0
    starts = []
    while offset < len(data):
        starts.append(offset)
        offset += HEADER_SIZE + int.from_bytes(data[offset + 4:offset + 8], "little")
    target = starts[-2] if middle else starts[-1]
    data[target + HEADER_SIZE + 3] ^= 0xFF
    path.write_bytes(bytes(data))
    if not middle:  # make it damage, not a torn tail: a valid-looking batch follows
        with open(path, "ab") as f:
            f.write(data[starts[-1]:])
