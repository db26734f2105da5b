"""Writing rosbag2 MCAP bags of serialized messages (no rclpy needed): the counterpart of :mod:`.bag`.

:class:`BagWriter` is one bag: it wraps :class:`rosbags.rosbag2.Writer` (version 9, MCAP,
message definitions embedded, generated from the audio stack's upstream definitions: either
ROS 2 audio stack, one per bag, see :mod:`sst_ros.audio.stacks`) and adds what a long unattended
recording needs:
``array.yaml`` beside ``metadata.yaml``, byte and message counters (per message type),
bounded flushing, a free-space reserve and a read-back check:

- Flushing: rosbags buffers a chunk of messages in memory (up to 1 MiB) before writing it.
  :class:`BagWriter` writes the chunk, flushes the file and calls ``fsync`` whenever the buffered
  messages span ``flush_period_s`` of record time (default 0.5 s) or hold ``flush_bytes``
  (default 512 KiB), and on :meth:`BagWriter.flush` (a recorder calls it from a timer). After
  SIGKILL or power loss the file holds every message up to the last flush; the bag lacks
  ``metadata.yaml`` and :func:`sst_ros.data.bag_recover.recover_bag` makes it readable again.
- Free space is measured on the bag's file system (``statvfs``) before every write, so space
  taken by other processes counts. Writing stops with :class:`BagError` before it falls
  below ``min_free_bytes`` plus what closing needs (the buffered chunk, the index); the bag
  is then closed and valid.
- :meth:`BagWriter.verify` re-opens a closed bag and counts the messages that can be read.

:class:`SplitBagWriter` is one recording written as a series of sibling bags ``<out>``,
``<out>_001``, ``<out>_002``, ... split by duration (of the record timestamps) and/or size;
"latched" messages (e.g. ``AudioInfo``) start every split, so each bag decodes on its own.
Both are context managers (like rosbags' ``Writer``); bags are never overwritten. Times are
integer nanoseconds.

Example::

    with SplitBagWriter(Path("training/bags/target"), geometry, split_size_bytes=10**9) as out:
        out.write("/audio_info", AUDIO_INFO_TYPE, t_ns, info_cdr, latched=True)
        out.write("/audio", AUDIO_DATA_STAMPED_TYPE, t_ns, audio_cdr)
"""

from __future__ import annotations

import collections
import logging
import os
import shutil
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, Protocol

from sst_ros.audio.stacks import ROS_DRIVERS
from sst_ros.data.bag import audio_typestore
from sst_ros.data.clipset import ARRAY_FILE, write_array_yaml
from sst_ros.errors import BagError
from sst_ros.geometry import MicArray
from sst_ros.timebase import ns_from_s

__all__ = ["FLUSH_BYTES", "FLUSH_PERIOD_S", "MCAP_CHUNK_BYTES", "BagWriter", "SplitBagWriter"]

MCAP_CHUNK_BYTES = 2**20  # rosbags buffers up to this much before writing a chunk by itself
FLUSH_BYTES = 512 * 1024  # default: flush once this many bytes are buffered
FLUSH_PERIOD_S = 0.5  # default: flush once the buffered messages span this long (record time), s
_CLOSE_MARGIN_BYTES = 256 * 1024  # summary header + metadata.yaml
_INDEX_BYTES_PER_CHUNK = 256  # chunk index + message index records written at close, per chunk
_LOG = logging.getLogger(__name__)


class _Log(Protocol):
    """What the writers log to: a ``logging.Logger`` or an rclpy node's logger."""

    def info(self, msg: str) -> Any: ...

    def warning(self, msg: str) -> Any: ...


class BagWriter:
    """One bag folder being written.

    Args:
        path: bag folder to create (must not exist: bags are never overwritten).
        geometry: array geometry written to ``<path>/array.yaml`` (or None).
        min_free_bytes: stop with :class:`BagError` before free space on the bag's file
            system falls below this plus what closing needs, bytes.
        flush_period_s: flush (to disk, ``fsync``) once the buffered messages span this
            long in record time, seconds (0: only by size and :meth:`flush`).
        flush_bytes: flush once this many bytes are buffered (0: rosbags' 1 MiB chunks).
        stack: the audio stack whose ``audio_common_msgs`` definitions the bag carries
            (``ros-drivers`` or ``mgonzs13``: they define ``AudioData`` and ``AudioInfo`` differently).

    Attributes:
        bytes_written: message bytes written. messages: messages written.
        type_counts: messages written per message type.

    Raises:
        BagError: the folder exists, cannot be created, or there is no room.
    """

    def __init__(
        self,
        path: Path,
        geometry: MicArray | None = None,
        min_free_bytes: int = 0,
        *,
        flush_period_s: float = FLUSH_PERIOD_S,
        flush_bytes: int = FLUSH_BYTES,
        stack: str = ROS_DRIVERS,
    ) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer, WriterError

        self.path = Path(path)
        self.min_free_bytes = int(min_free_bytes)
        self.flush_period_ns = ns_from_s(flush_period_s)
        self.flush_bytes = int(flush_bytes)
        self.bytes_written = 0
        self.messages = 0
        self.type_counts: collections.Counter[str] = collections.Counter()
        self._pending_t0_ns: int | None = None  # record time of the oldest message not yet flushed
        self._writer: Any = None
        self._storage: Any = None
        self._conns: dict[tuple[str, str], Any] = {}  # (topic, type) -> rosbags connection
        self._store = audio_typestore(stack)
        if self.path.exists():
            raise BagError(f"{self.path} exists already; the recorder never overwrites a bag: choose another 'out'")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise BagError(f"cannot create folder {self.path.parent}: {err.strerror}; choose a writable 'out'") from err
        self._check_space(0)
        self._writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        try:
            self._writer.open()
        except (WriterError, OSError) as err:
            raise BagError(f"cannot create bag {self.path}: {err}; choose a writable 'out'") from err
        self._storage = _flushable_storage(self._writer)
        if geometry is not None:
            try:
                write_array_yaml(self.path, geometry)
            except OSError as err:
                self.close()
                raise BagError(f"cannot write {self.path / ARRAY_FILE}: {err.strerror}") from err

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        _close_keeping_error(self.close, exc)

    @property
    def buffered_bytes(self) -> int:
        """Bytes held in memory, not yet written to the file (at most about ``flush_bytes``)."""
        if self._storage is None:
            return MCAP_CHUNK_BYTES if self._writer is not None else 0
        return int(self._storage.chunk.bio.tell())

    def _close_bytes(self) -> int:
        """Bytes closing needs: the buffered chunk, the index (grows with the chunks) and metadata.yaml."""
        chunks = len(self._storage.chunks) + 1 if self._storage is not None else 1
        return self.buffered_bytes + _CLOSE_MARGIN_BYTES + _INDEX_BYTES_PER_CHUNK * chunks

    def _check_space(self, incoming: int) -> None:
        """BagError when the file system of the bag (measured: all writers count) lacks room."""
        need = self.min_free_bytes + self._close_bytes() + incoming
        free = shutil.disk_usage(self.path if self.path.exists() else self.path.parent).free
        if free < need:
            raise BagError(
                f"disk almost full: {free / 1e6:.1f} MB free on the file system of {self.path}, "
                f"{need / 1e6:.1f} MB needed to keep writing and close the bag safely; free space or "
                "record elsewhere ('out'); the bag written so far is kept"
            )

    def write(self, topic: str, msgtype: str, timestamp_ns: int, data: bytes, offered_qos: Sequence[Any] = ()) -> None:
        """Append one serialized (CDR) message.

        Args:
            topic: topic name. msgtype: e.g. ``audio_common_msgs/msg/AudioInfo``.
            timestamp_ns: record time, nanoseconds.
            data: the CDR bytes.
            offered_qos: ``rosbags.interfaces.Qos`` list stored with the topic when it is first
                written, so that ``ros2 bag play`` offers the same QoS (e.g. latched AudioInfo).

        Raises:
            BagError: no room left (the bag is then closed and valid) or a write failure.
        """
        if self._writer is None:
            raise BagError(f"bag {self.path} is closed")
        try:
            self._check_space(len(data))
            conn = self._conns.get((topic, msgtype))
            if conn is None:
                conn = self._writer.add_connection(
                    topic, msgtype, typestore=self._store, offered_qos_profiles=list(offered_qos)
                )
                self._conns[(topic, msgtype)] = conn
            self._writer.write(conn, int(timestamp_ns), data)
            if self._pending_t0_ns is None:
                self._pending_t0_ns = int(timestamp_ns)
            self.bytes_written += len(data)
            self.messages += 1
            self.type_counts[msgtype] += 1
            if self._flush_due(int(timestamp_ns)):
                self._flush()
        except BagError as err:
            _close_keeping_error(self.close, err)
            raise
        except OSError as err:
            bag_err = BagError(f"writing bag {self.path} failed: {err.strerror or err}; the bag was closed")
            _close_keeping_error(self.close, bag_err)
            raise bag_err from err

    def _flush_due(self, timestamp_ns: int) -> bool:
        if self.flush_bytes > 0 and self.buffered_bytes >= self.flush_bytes:
            return True
        t0 = self._pending_t0_ns
        return self.flush_period_ns > 0 and t0 is not None and timestamp_ns - t0 >= self.flush_period_ns

    def _flush(self) -> None:
        """Write the buffered chunk, flush and fsync (OSError passes through)."""
        storage = self._storage
        self._pending_t0_ns = None
        if storage is None:
            return
        if storage.chunk.msgs:
            storage.close_chunk()
        storage.bio.flush()
        os.fsync(storage.bio.fileno())

    def flush(self) -> None:
        """Write what is buffered to the file and ``fsync`` it (nothing to do after :meth:`close`).

        Raises:
            BagError: the write failed (e.g. the disk is full); the bag is then closed.
        """
        if self._writer is None:
            return
        try:
            self._flush()
        except OSError as err:
            bag_err = BagError(f"writing bag {self.path} failed: {err.strerror or err}; the bag was closed")
            _close_keeping_error(self.close, bag_err)
            raise bag_err from err

    def verify(self) -> int:
        """Re-open the closed bag and count the messages that can be read.

        Returns:
            Messages read back (equal to :attr:`messages`).

        Raises:
            BagError: the bag cannot be read, or holds fewer messages than were written.
        """
        from sst_ros.data.bag import count_bag_messages

        if self._writer is not None:
            raise BagError(f"bag {self.path} is still open; close it before verifying it")
        n = count_bag_messages(self.path)
        if n != self.messages:
            raise BagError(
                f"bag {self.path} reads back {n} of the {self.messages} messages written; the file system lost "
                "data (disk full or failing?): check the disk and keep this bag apart from complete ones"
            )
        return n

    def close(self) -> None:
        """Flush and write ``metadata.yaml``. Safe to call more than once.

        Raises:
            BagError: closing failed (the bag may then lack its index or metadata).
        """
        writer, self._writer = self._writer, None
        if writer is None:
            return
        try:
            writer.close()
        except Exception as err:  # rosbags raises its own errors, some wrapping OSError
            from sst_ros.data.bag_recover import recover_hint

            _abort(writer)
            raise BagError(
                f"closing bag {self.path} failed: {err}; it has no metadata.yaml: once there is room again, "
                f"recover what was flushed with `{recover_hint(self.path)}`"
            ) from err


def _flushable_storage(writer: Any) -> Any:
    """rosbags' MCAP storage object if it offers what bounded flushing needs, else None (warned once).

    rosbags 0.10-0.11 ``McapWriter``: ``chunk`` (``.bio``, ``.msgs``: the pending chunk),
    ``close_chunk()``, ``chunks`` (closed chunks' indexes) and ``bio`` (the file).
    """
    storage = getattr(writer, "storage", None)
    chunk = getattr(storage, "chunk", None)
    ok = all(hasattr(storage, a) for a in ("close_chunk", "chunks", "bio")) and all(
        hasattr(chunk, a) for a in ("bio", "msgs")
    )
    if not ok:
        _LOG.warning("this rosbags version's MCAP writer cannot be flushed early: up to 1 MiB of messages stays "
                     "in memory (lost on SIGKILL); install rosbags 0.10-0.11")  # fmt: skip
        return None
    return storage


def _abort(writer: Any) -> None:
    """Release the file of a writer whose close failed (what was flushed stays on disk)."""
    try:
        writer.abort()
    except Exception:  # noqa: BLE001, S110 - best effort after a failure already reported
        pass


def _close_keeping_error(close: Callable[[], None], error: BaseException | None) -> None:
    """Call ``close``; when ``error`` is already on its way, a failing close is added to it as a
    note instead of replacing it (the first error names the cause and the fix, e.g. disk full)."""
    if error is None:
        close()
        return
    try:
        close()
    except BagError as close_err:
        error.add_note(f"closing the bag afterwards failed too: {close_err}")


class SplitBagWriter:
    """One recording written into sibling bags ``<out>``, ``<out>_001``, ... (see the module docstring).

    The first bag is created by :meth:`open` (or ``with``); later ones lazily, by the first
    :meth:`write` after a split is due, so no split is empty. A split name that exists
    already is skipped (with a warning), never overwritten.

    Args:
        out: the first bag's folder.
        geometry: array geometry saved as ``array.yaml`` in every bag (or None).
        split_duration_s: start a new bag once the record timestamps of the current one span
            this long, seconds (0: never).
        split_size_bytes: start a new bag once the current one holds this many message bytes (0: never).
        min_free_bytes: free-space reserve (see :class:`BagWriter`).
        flush_period_s, flush_bytes: flushing bounds (see :class:`BagWriter`).
        stack: the audio stack of the messages (see :class:`BagWriter`).
        log: where "new bag split" / "closed" lines go (default: this module's ``logging`` logger).

    Attributes:
        splits: the bag folders created so far, in order (:meth:`discard_without` removes some).
        split_counts: bag folder -> messages written to it per message type.
    """

    def __init__(
        self,
        out: Path,
        geometry: MicArray | None = None,
        *,
        split_duration_s: float = 0.0,
        split_size_bytes: int = 0,
        min_free_bytes: int = 0,
        flush_period_s: float = FLUSH_PERIOD_S,
        flush_bytes: int = FLUSH_BYTES,
        log: _Log | None = None,
        stack: str = ROS_DRIVERS,
    ) -> None:
        self.out = Path(out)
        self.stack = stack
        self.flush_period_s = float(flush_period_s)
        self.flush_bytes = int(flush_bytes)
        self.split_counts: dict[Path, collections.Counter[str]] = {}
        self._written: list[BagWriter] = []
        self.geometry = geometry
        self.split_duration_ns = ns_from_s(split_duration_s)
        self.split_size_bytes = int(split_size_bytes)
        self.min_free_bytes = int(min_free_bytes)
        self.splits: list[Path] = []
        self._log: _Log = log if log is not None else logging.getLogger(__name__)
        self._bag: BagWriter | None = None
        self._bag_t0_ns: int | None = None
        self._index = 0
        self._latched: dict[str, tuple[str, bytes, Sequence[Any]]] = {}
        self._closed_bytes = 0
        self._closed_messages = 0

    def __enter__(self) -> SplitBagWriter:
        self.open()
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        _close_keeping_error(self.close, exc)

    @property
    def current(self) -> Path | None:
        """The bag being written, or None between splits (and after :meth:`close`)."""
        return self._bag.path if self._bag is not None else None

    @property
    def bytes_written(self) -> int:
        """Message bytes written to all splits."""
        return self._closed_bytes + (self._bag.bytes_written if self._bag else 0)

    @property
    def messages(self) -> int:
        """Messages written to all splits."""
        return self._closed_messages + (self._bag.messages if self._bag else 0)

    def _split_path(self, index: int) -> Path:
        return self.out if index == 0 else self.out.with_name(f"{self.out.name}_{index:03d}")

    def open(self) -> None:
        """Create the first bag (``out``).

        Raises:
            BagError: ``out`` exists, cannot be created, or there is no room.
        """
        if not self.splits:
            self._start(self._split_path(0), None)

    def _start(self, path: Path, timestamp_ns: int | None) -> None:
        self._bag = BagWriter(path, self.geometry, self.min_free_bytes, flush_period_s=self.flush_period_s,
                              flush_bytes=self.flush_bytes, stack=self.stack)  # fmt: skip
        self.splits.append(path)
        self.split_counts[path] = self._bag.type_counts
        self._written.append(self._bag)
        self._bag_t0_ns = timestamp_ns
        if timestamp_ns is None:
            return
        try:
            for topic, (msgtype, data, qos) in self._latched.items():
                self._bag.write(topic, msgtype, timestamp_ns, data, qos)
        except BagError:
            self._retire()  # closed by BagWriter.write
            raise

    def _next_split(self, timestamp_ns: int) -> None:
        self._index += 1
        path = self._split_path(self._index)
        while path.exists():
            self._log.warning(f"{path} exists; not overwriting it, using the next split name")
            self._index += 1
            path = self._split_path(self._index)
        self._start(path, timestamp_ns)
        self._log.info(f"new bag split {path}")

    def latch(self, topic: str, msgtype: str, data: bytes, offered_qos: Sequence[Any] = ()) -> None:
        """Remember ``data`` as the message that starts every later split on ``topic`` (without writing it)."""
        self._latched[topic] = (msgtype, bytes(data), tuple(offered_qos))

    def write(
        self,
        topic: str,
        msgtype: str,
        timestamp_ns: int,
        data: bytes,
        offered_qos: Sequence[Any] = (),
        *,
        latched: bool = False,
    ) -> None:
        """Append one serialized message, opening the next split first when one is due.

        Args:
            latched: also :meth:`latch` the message (a new split starts with it; it is then
                not written twice).

        Raises:
            BagError: as :meth:`BagWriter.write`; the current bag is then closed and valid.
        """
        if latched:
            self.latch(topic, msgtype, data, offered_qos)
        if self._bag is None:
            if not self.splits:
                raise BagError(f"recording {self.out} is not open")
            self._next_split(int(timestamp_ns))
            if latched:
                return  # the new split starts with it
        bag = self._bag
        if bag is None:
            raise BagError(f"recording {self.out}: no bag is open")
        try:
            bag.write(topic, msgtype, timestamp_ns, data, offered_qos)
        except BagError:
            self._retire()
            raise
        if self._bag_t0_ns is None:
            self._bag_t0_ns = int(timestamp_ns)
        if self._split_due(int(timestamp_ns)):
            self.roll_over()

    def _split_due(self, timestamp_ns: int) -> bool:
        bag = self._bag
        if bag is None:
            return False
        too_long = self.split_duration_ns > 0 and timestamp_ns - (self._bag_t0_ns or 0) >= self.split_duration_ns
        too_big = self.split_size_bytes > 0 and bag.bytes_written >= self.split_size_bytes
        return too_long or too_big

    def _retire(self) -> BagWriter | None:
        bag, self._bag = self._bag, None
        if bag is not None:
            self._closed_bytes += bag.bytes_written
            self._closed_messages += bag.messages
        return bag

    def roll_over(self) -> None:
        """Close the current bag; the next :meth:`write` opens the next split.

        Raises:
            BagError: closing failed.
        """
        bag = self._retire()
        if bag is None:
            return
        bag.close()
        self._log.info(f"closed {bag.path}: {bag.messages} messages, {bag.bytes_written / 1e6:.2f} MB")

    def flush(self) -> None:
        """Flush the current bag to disk (see :meth:`BagWriter.flush`; a recorder calls it from a timer).

        Raises:
            BagError: the write failed; the bag is then closed.
        """
        bag = self._bag
        if bag is None:
            return
        try:
            bag.flush()
        except BagError:
            self._retire()
            raise

    def close(self) -> None:
        """Close the current bag (idempotent).

        Raises:
            BagError: closing failed.
        """
        self.roll_over()

    def discard_without(self, msgtype: str | Collection[str]) -> list[Path]:
        """Remove the closed bags holding no message of ``msgtype`` (a type name or several, e.g. every
        audio type); returns them.

        Only the files this writer made are removed (``metadata.yaml``, the ``.mcap`` file,
        ``array.yaml``); a folder holding anything else is kept.

        Raises:
            BagError: a bag is still open.
        """
        if self._bag is not None:
            raise BagError(f"bag {self._bag.path} is still open; close the recording first")
        wanted = {msgtype} if isinstance(msgtype, str) else set(msgtype)
        removed = []
        for path in list(self.splits):
            if any(self.split_counts[path][t] > 0 for t in wanted):
                continue
            ours = {"metadata.yaml", f"{path.name}.mcap", ARRAY_FILE}
            if not path.is_dir() or any(f.name not in ours for f in path.iterdir()):
                continue
            shutil.rmtree(path, ignore_errors=True)
            if not path.exists():
                self.splits.remove(path)
                removed.append(path)
        return removed

    def verify(self) -> dict[Path, int]:
        """Re-open every closed bag still in :attr:`splits` and count its readable messages.

        Returns:
            bag folder -> messages read back.

        Raises:
            BagError: a bag is still open, cannot be read, or reads back fewer messages than written.
        """
        if self._bag is not None:
            raise BagError(f"bag {self._bag.path} is still open; close the recording first")
        return {b.path: b.verify() for b in self._written if b.path in self.splits}
