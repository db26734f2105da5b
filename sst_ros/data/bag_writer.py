"""Writing rosbag2 MCAP bags of serialized messages (no rclpy needed): the counterpart of :mod:`.bag`.

:class:`BagWriter` is one bag: it wraps :class:`rosbags.rosbag2.Writer` (version 9, MCAP,
message definitions embedded) and adds what a long unattended recording needs:
``array.yaml`` beside ``metadata.yaml``, byte and message counters, and a free-space reserve
so the bag can always be closed (a full disk stops the recording with a readable bag instead
of a truncated file).

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

import logging
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from sst_ros.data.bag import audio_typestore
from sst_ros.data.clipset import ARRAY_FILE, write_array_yaml
from sst_ros.errors import BagError
from sst_ros.geometry import MicArray
from sst_ros.timebase import ns_from_s

__all__ = ["MCAP_CHUNK_BYTES", "BagWriter", "SplitBagWriter"]

MCAP_CHUNK_BYTES = 2**20  # rosbags buffers up to this much before writing a chunk
_CLOSE_MARGIN_BYTES = 256 * 1024  # summary + metadata.yaml


class _Log(Protocol):
    """What the writers log to: a ``logging.Logger`` or an rclpy node's logger."""

    def info(self, msg: str) -> Any: ...

    def warning(self, msg: str) -> Any: ...


class BagWriter:
    """One bag folder being written.

    Args:
        path: bag folder to create (must not exist: bags are never overwritten).
        geometry: array geometry written to ``<path>/array.yaml`` (or None).
        min_free_bytes: stop with :class:`BagError` before free space falls below this plus
            the writer's buffer, so that closing always succeeds.

    Raises:
        BagError: the folder exists, cannot be created, or there is no room.
    """

    def __init__(self, path: Path, geometry: MicArray | None = None, min_free_bytes: int = 0) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer, WriterError

        self.path = Path(path)
        self.min_free_bytes = int(min_free_bytes)
        self.bytes_written = 0
        self.messages = 0
        self._conns: dict[str, Any] = {}
        self._store = audio_typestore()
        if self.path.exists():
            raise BagError(f"{self.path} exists already; the recorder never overwrites a bag: choose another 'out'")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise BagError(f"cannot create folder {self.path.parent}: {err.strerror}; choose a writable 'out'") from err
        self._check_space(0)
        self._writer: Any = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        try:
            self._writer.open()
        except (WriterError, OSError) as err:
            raise BagError(f"cannot create bag {self.path}: {err}; choose a writable 'out'") from err
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

    def _check_space(self, incoming: int) -> None:
        need = self.min_free_bytes + MCAP_CHUNK_BYTES + _CLOSE_MARGIN_BYTES + incoming
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
            conn = self._conns.get(topic)
            if conn is None:
                conn = self._writer.add_connection(
                    topic, msgtype, typestore=self._store, offered_qos_profiles=list(offered_qos)
                )
                self._conns[topic] = conn
            self._writer.write(conn, int(timestamp_ns), data)
        except BagError as err:
            _close_keeping_error(self.close, err)
            raise
        except OSError as err:
            bag_err = BagError(f"writing bag {self.path} failed: {err.strerror or err}; the bag was closed")
            _close_keeping_error(self.close, bag_err)
            raise bag_err from err
        self.bytes_written += len(data)
        self.messages += 1

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
            raise BagError(f"closing bag {self.path} failed: {err}; it may be truncated") from err


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
        log: where "new bag split" / "closed" lines go (default: this module's ``logging`` logger).

    Attributes:
        splits: the bag folders created so far, in order.
    """

    def __init__(
        self,
        out: Path,
        geometry: MicArray | None = None,
        *,
        split_duration_s: float = 0.0,
        split_size_bytes: int = 0,
        min_free_bytes: int = 0,
        log: _Log | None = None,
    ) -> None:
        self.out = Path(out)
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
        self._bag = BagWriter(path, self.geometry, self.min_free_bytes)
        self.splits.append(path)
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

    def close(self) -> None:
        """Close the current bag (idempotent).

        Raises:
            BagError: closing failed.
        """
        self.roll_over()
