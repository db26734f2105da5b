"""Recovering a rosbag2 MCAP bag that was never closed (SIGKILL, power loss, full disk); no rclpy.

A bag is only complete once its writer closes it: the MCAP file then ends with an index and
a footer, and ``metadata.yaml`` is written beside it. A recorder killed before that leaves
an ``.mcap`` file without ``metadata.yaml`` (and without the index), which rosbags, ``ros2
bag`` and :func:`sst_ros.data.bag.read_bag_audio` refuse. ``record_target`` flushes its
file in chunks of about a second (:mod:`sst_ros.data.bag_writer`), so such a file holds
every message up to the last flush.

:func:`recover_bag` reads the MCAP data records from the start as far as they are intact
(every complete chunk; the complete messages of a cut-off uncompressed last chunk; it stops
at the first damaged or missing record), rewrites them into a new, closed MCAP file with
rosbags' writer, replaces the damaged file with it and writes ``metadata.yaml``. Anything
else in the folder (``array.yaml``) is kept. Times are integer nanoseconds.

Example::

    report = recover_bag(Path("training/bags/target_20250101_120000"))
    print(report.describe())

From the shell: ``record_target --recover DIR`` (:data:`RECOVER_COMMAND`).
"""

from __future__ import annotations

import mmap
import shlex
import shutil
import struct
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sst_ros.errors import BagError

__all__ = [
    "RECOVER_COMMAND",
    "McapContent",
    "RecoveryReport",
    "needs_recovery",
    "recover_bag",
    "recover_hint",
    "scan_mcap",
]

#: The shell command that recovers a bag folder (append the folder).
RECOVER_COMMAND = "record_target --recover"

_MAGIC = b"\x89MCAP0\r\n"
_OP_FOOTER, _OP_SCHEMA, _OP_CHANNEL, _OP_MESSAGE, _OP_CHUNK, _OP_DATA_END = 0x02, 0x03, 0x04, 0x05, 0x06, 0x0F
_KNOWN_OPS = set(range(0x01, 0x10))  # valid MCAP opcodes; anything else (e.g. 0x00 of a zero-filled tail) ends the data
_RECORD_HEAD = 9  # opcode (1 byte) + length (8 bytes)
_MAX_RECORD = 1 << 40  # a length beyond this is garbage, not a record


def recover_hint(bag: Path) -> str:
    """``record_target --recover <bag>`` for ``bag`` (quoted for the shell)."""
    return f"{RECOVER_COMMAND} {shlex.quote(str(bag))}"


def needs_recovery(bag: Path) -> bool:
    """Whether ``bag`` is a folder with an ``.mcap`` file but no ``metadata.yaml`` (a bag that was not closed)."""
    bag = Path(bag)
    return bag.is_dir() and not (bag / "metadata.yaml").is_file() and any(bag.glob("*.mcap"))


@dataclass(frozen=True)
class _Schema:
    name: str
    encoding: str
    data: str


@dataclass(frozen=True)
class _Channel:
    topic: str
    schema_id: int
    encoding: str
    metadata: dict[str, str]


@dataclass
class McapContent:
    """What :func:`scan_mcap` found in an MCAP file (schemas and channels by id, message counts).

    Attributes:
        intact_bytes: bytes from the start of the file up to the end of the last record read.
        size_bytes: the file's size, bytes.
        complete: the file reached its ``DataEnd`` record (it was closed).
        stop_reason: why reading stopped (e.g. "a record is cut off at byte 123456").
        messages: messages read per channel id.
    """

    schemas: dict[int, _Schema] = field(default_factory=dict)
    channels: dict[int, _Channel] = field(default_factory=dict)
    intact_bytes: int = 0
    size_bytes: int = 0
    complete: bool = False
    stop_reason: str = ""
    messages: Counter[int] = field(default_factory=Counter)
    inner_end: int = 0  # end of the last complete record inside the chunk being read, bytes


class _CutError(Exception):
    """The data ends (cut off or damaged) at this point."""


def _u16(b: memoryview, o: int) -> int:
    return int(struct.unpack_from("<H", b, o)[0])


def _u32(b: memoryview, o: int) -> int:
    return int(struct.unpack_from("<I", b, o)[0])


def _u64(b: memoryview, o: int) -> int:
    return int(struct.unpack_from("<Q", b, o)[0])


def _string(b: memoryview, o: int, end: int) -> tuple[str, int]:
    if o + 4 > end:
        raise _CutError("string length")
    n = _u32(b, o)
    if o + 4 + n > end:
        raise _CutError("string")
    return bytes(b[o + 4 : o + 4 + n]).decode("utf-8", errors="replace"), o + 4 + n


def _record_head(b: memoryview, pos: int, end: int) -> tuple[int, int]:
    """(opcode, content length) of the record at ``pos``; :class:`_CutError` if there is none."""
    if pos + _RECORD_HEAD > end:
        raise _CutError(f"a record header is cut off at byte {pos}")
    op, length = b[pos], _u64(b, pos + 1)
    if op not in _KNOWN_OPS or length > _MAX_RECORD:
        raise _CutError(f"no valid record at byte {pos} (opcode 0x{op:02x}, length {length})")
    return op, length


def _records(b: memoryview, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(opcode, content start, content end) of the complete records in ``b[start:end]``.

    Raises:
        _CutError: at a record that is cut off or not a record; everything yielded before is intact.
    """
    pos = start
    while pos < end:
        op, length = _record_head(b, pos, end)
        if pos + _RECORD_HEAD + length > end:
            raise _CutError(f"a record (opcode 0x{op:02x}) is cut off at byte {pos}")
        yield op, pos + _RECORD_HEAD, pos + _RECORD_HEAD + length
        pos += _RECORD_HEAD + length


def _chunk_records(b: memoryview, start: int, end: int, truncated: bool) -> tuple[memoryview, bool, int]:
    """The records of a chunk record whose content is ``b[start:end]`` (``truncated``: cut off).

    Returns:
        (records bytes, whether they are cut off, their offset in ``b`` (uncompressed only)).

    Raises:
        _CutError: the chunk cannot be read (header cut off, unknown compression, a bad CRC,
            or a cut-off compressed chunk).
    """
    if start + 28 > end:
        raise _CutError("a chunk header is cut off")
    uncompressed_size, crc = _u64(b, start + 16), _u32(b, start + 24)
    compression, o = _string(b, start + 28, end)
    if o + 8 > end:
        raise _CutError("a chunk header is cut off")
    n = _u64(b, o)
    data_end = o + 8 + n
    cut = truncated or data_end > end
    data = b[o + 8 : min(data_end, end)]
    if compression == "":
        if not cut and crc and zlib.crc32(data) != crc:
            raise _CutError("a chunk fails its CRC check")
        return data, cut, o + 8
    if cut:
        raise _CutError(f"a {compression}-compressed chunk is cut off")
    if compression != "zstd":
        raise _CutError(f"a chunk uses compression '{compression}', which this recovery does not read")
    import zstandard

    try:
        raw = zstandard.ZstdDecompressor().decompress(bytes(data), max_output_size=uncompressed_size)
    except zstandard.ZstdError as err:
        raise _CutError(f"a zstd chunk cannot be decompressed: {err}") from err
    if crc and zlib.crc32(raw) != crc:
        raise _CutError("a chunk fails its CRC check")
    return memoryview(raw), False, o + 8


def scan_mcap(path: Path, content: McapContent) -> Iterator[tuple[int, int, bytes]]:
    """Read an MCAP file's data section from the start as far as it is intact.

    Yields ``(channel id, log time ns, message bytes)`` per message in file order; ``content``
    is filled as reading goes: the schemas and channels read so far and, when the generator
    is exhausted, the totals and why reading stopped.

    Raises:
        BagError: the file cannot be opened, or is not an MCAP file.
    """
    path = Path(path)
    try:
        fh = open(path, "rb")
    except OSError as err:
        raise BagError(f"cannot open {path}: {err.strerror}") from err
    with fh:
        size = content.size_bytes = path.stat().st_size
        if size < len(_MAGIC) or fh.read(len(_MAGIC)) != _MAGIC:
            raise BagError(f"{path} is not an MCAP file (no MCAP magic at its start); it cannot be recovered")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            data_end = _data_end(mm, size)
            b = memoryview(mm)
            try:
                yield from _scan(b, data_end, content)
            finally:
                b.release()
        if data_end < size and not content.complete:
            content.stop_reason += f"; the last {size - data_end} bytes are zeros (not written before a power loss?)"


def _data_end(mm: mmap.mmap, size: int) -> int:
    """``size`` less the run of zero bytes at the end of the file.

    After a power loss a file system may show zeros where the last blocks were never
    written; the length fields before them still promise data. Reading the file as if it
    ended where the zeros start keeps every message wholly before them and drops the one
    they cut (a message that really ended in zero samples is dropped too: the safe side).
    """
    end = size
    step = 1 << 20
    while end > 0:
        start = max(0, end - step)
        block = mm[start:end]
        stripped = len(block.rstrip(b"\0"))
        if stripped:
            return start + stripped
        end = start
    return 0


def _scan(b: memoryview, size: int, content: McapContent) -> Iterator[tuple[int, int, bytes]]:
    pos = len(_MAGIC)
    content.intact_bytes = pos
    try:
        while pos < size:
            op, length = _record_head(b, pos, size)
            start, end = pos + _RECORD_HEAD, pos + _RECORD_HEAD + length
            if op in (_OP_DATA_END, _OP_FOOTER):
                content.complete = True
                content.intact_bytes = min(end, size)
                return
            if op == _OP_CHUNK:
                records, cut, offset = _chunk_records(b, start, min(end, size), end > size)
                content.inner_end = 0
                try:
                    yield from _inner(records, content)
                except _CutError as err:
                    if cut:
                        content.intact_bytes = offset + content.inner_end
                        raise _CutError(f"the last chunk is cut off; its complete messages were kept ({err})") from err
                    raise
                if cut:
                    content.intact_bytes = offset + content.inner_end
                    raise _CutError(f"the last chunk is cut off at byte {size}; its complete messages were kept")
            elif end > size:
                raise _CutError(f"a record (opcode 0x{op:02x}) is cut off at byte {pos}")
            elif op in (_OP_SCHEMA, _OP_CHANNEL, _OP_MESSAGE):
                yield from _inner(b[pos:end], content)
            pos = end
            content.intact_bytes = pos
        content.stop_reason = "the file ends without its index (it was not closed)"
    except _CutError as err:
        content.stop_reason = str(err)


def _inner(records: memoryview, content: McapContent) -> Iterator[tuple[int, int, bytes]]:
    """Schemas, channels and messages among ``records`` (a chunk's content, or top-level records)."""
    for op, s, e in _records(records, 0, len(records)):
        if op == _OP_SCHEMA:
            if s + 2 > e:
                raise _CutError("a schema record is too short")
            sid = _u16(records, s)
            name, o = _string(records, s + 2, e)
            encoding, o = _string(records, o, e)
            data, _ = _string(records, o, e)
            content.schemas[sid] = _Schema(name, encoding, data)
        elif op == _OP_CHANNEL:
            if s + 4 > e:
                raise _CutError("a channel record is too short")
            cid, sid = _u16(records, s), _u16(records, s + 2)
            topic, o = _string(records, s + 4, e)
            encoding, o = _string(records, o, e)
            meta: dict[str, str] = {}
            if o + 4 <= e:
                meta_end = min(o + 4 + _u32(records, o), e)
                o += 4
                while o < meta_end:
                    key, o = _string(records, o, meta_end)
                    value, o = _string(records, o, meta_end)
                    meta[key] = value
            content.channels[cid] = _Channel(topic, sid, encoding, meta)
        elif op == _OP_MESSAGE:
            if s + 22 > e:
                raise _CutError("a message record is too short")
            cid, log_time = _u16(records, s), _u64(records, s + 6)
            content.messages[cid] += 1
            yield cid, log_time, bytes(records[s + 22 : e])
        content.inner_end = e


@dataclass(frozen=True)
class RecoveryReport:
    """What :func:`recover_bag` did.

    Attributes:
        bag: the bag folder.
        messages: messages in the recovered bag, per topic.
        dropped_bytes: bytes at the end of the damaged file that could not be read.
        stop_reason: why reading stopped ("" when the file was complete).
        unknown_channel_messages: messages skipped because their channel record was lost.
    """

    bag: Path
    messages: dict[str, int]
    dropped_bytes: int
    stop_reason: str
    unknown_channel_messages: int = 0

    @property
    def total_messages(self) -> int:
        """Messages recovered, all topics."""
        return sum(self.messages.values())

    def describe(self) -> str:
        """One line for the user."""
        topics = ", ".join(f"{t}: {n}" for t, n in sorted(self.messages.items())) or "no topics"
        text = f"recovered {self.bag}: {self.total_messages} messages ({topics})"
        if self.dropped_bytes:
            text += f"; {self.dropped_bytes} bytes at the end could not be read ({self.stop_reason})"
        if self.unknown_channel_messages:
            text += f"; {self.unknown_channel_messages} messages of unknown channels skipped"
        return text


def _connection_args(channel: _Channel, schema: _Schema | None, store: Any) -> dict[str, Any]:
    """Keyword arguments of rosbags' ``Writer.add_connection`` for a recovered channel."""
    from rosbags.rosbag2.metadata import parse_qos
    from rosbags.typesys import get_types_from_msg

    if schema is None:
        raise BagError(f"channel {channel.topic}: its schema record was lost; the topic cannot be recovered")
    if schema.encoding == "ros2msg":
        try:
            store.register(get_types_from_msg(schema.data, schema.name))
        except Exception:  # noqa: BLE001 - a type clashing with a known one: the known definition is used
            pass
    try:
        rihs01 = store.hash_rihs01(schema.name)
    except Exception as err:  # noqa: BLE001 - rosbags raises several types for unknown types
        raise BagError(f"channel {channel.topic}: message type {schema.name} cannot be rebuilt: {err}") from err
    try:
        qos = parse_qos(channel.metadata.get("offered_qos_profiles", "") or [])
    except Exception:  # noqa: BLE001 - QoS is informative; a bag without it still plays
        qos = []
    return {"msgdef": schema.data, "rihs01": rihs01, "serialization_format": channel.encoding or "cdr",
            "offered_qos_profiles": qos}  # fmt: skip


def recover_bag(bag: Path) -> RecoveryReport:
    """Recover the bag folder ``bag`` left without ``metadata.yaml`` (see the module docstring).

    The damaged ``.mcap`` file is replaced by a closed one holding every message that could
    be read, then ``metadata.yaml`` is written; the folder's other files are kept. Running it
    again after an interruption is safe.

    Args:
        bag: the bag folder (holding one ``.mcap`` file and no ``metadata.yaml``).

    Returns:
        What was recovered.

    Raises:
        BagError: not a folder, no or several ``.mcap`` files, ``metadata.yaml`` present (the
            bag is closed already), not an MCAP file, not enough free space, or a write failure.
    """
    from rosbags.rosbag2 import StoragePlugin, Writer

    from sst_ros.audio.stacks import ROS_DRIVERS
    from sst_ros.data.bag import audio_typestore, count_bag_messages, type_stack

    bag = Path(bag)
    if not bag.is_dir():
        raise BagError(f"{bag} is not a folder; give the bag folder (the one holding the .mcap file)")
    if (bag / "metadata.yaml").is_file():
        raise BagError(f"{bag} has its metadata.yaml: it was closed and needs no recovery")
    files = sorted(bag.glob("*.mcap"))
    if len(files) != 1:
        found = ", ".join(f.name for f in files) or "none"
        raise BagError(f"{bag} must hold exactly one .mcap file to recover (found: {found}); move the others away")
    (src,) = files
    work = bag / ".recovering"
    shutil.rmtree(work, ignore_errors=True)  # a recovery that was interrupted
    free = shutil.disk_usage(bag).free
    need = src.stat().st_size + (1 << 20)
    if free < need:
        raise BagError(f"recovering {bag} needs {need / 1e6:.1f} MB free on its file system, {free / 1e6:.1f} MB "
                       "are free; free some space and run the recovery again")  # fmt: skip
    tmp = work / bag.name
    # one typestore per audio stack: both define AudioData and AudioInfo, with different fields
    stores: dict[str, Any] = {}
    conns: dict[int, Any] = {}
    skipped = 0
    counts: Counter[str] = Counter()
    content = McapContent()
    try:
        writer = Writer(tmp, version=9, storage_plugin=StoragePlugin.MCAP)
        writer.open()
        try:
            for cid, log_time, data in scan_mcap(src, content):
                conn = conns.get(cid)
                if conn is None:
                    channel = content.channels.get(cid)
                    if channel is None:
                        skipped += 1
                        continue
                    schema = content.schemas.get(channel.schema_id)
                    stack = (type_stack(schema.name, schema.data) if schema is not None else None) or ROS_DRIVERS
                    store = stores.setdefault(stack, audio_typestore(stack))
                    args = _connection_args(channel, schema, store)
                    conn = conns[cid] = writer.add_connection(channel.topic, content.schemas[channel.schema_id].name,
                                                              **args)  # fmt: skip
                writer.write(conn, log_time, data)
                counts[conn.topic] += 1
        finally:
            writer.close()
        rebuilt = tmp / f"{bag.name}.mcap"
        # the closed file first: interrupted here, the folder holds a complete .mcap and recovers again
        rebuilt.replace(bag / rebuilt.name)
        if src.name != rebuilt.name:
            src.unlink()
        (tmp / "metadata.yaml").replace(bag / "metadata.yaml")
    except BagError:
        raise
    except Exception as err:  # rosbags' writer errors, OSError
        raise BagError(f"recovering {bag} failed: {err}; the damaged file {src} is unchanged") from err
    finally:
        shutil.rmtree(work, ignore_errors=True)
    n = count_bag_messages(bag)
    if n != sum(counts.values()):
        raise BagError(f"recovered bag {bag} reads back {n} messages, {sum(counts.values())} were written")
    dropped = 0 if content.complete else max(0, content.size_bytes - content.intact_bytes)
    return RecoveryReport(bag, dict(counts), dropped, "" if content.complete else content.stop_reason, skipped)
