"""One rosbag2 MCAP bag being written (serialized messages in, a valid bag out).

Wraps :class:`rosbags.rosbag2.Writer` (version 9, MCAP, message definitions embedded) and
adds what a long unattended recording needs: ``array.yaml`` beside ``metadata.yaml``, byte
and message counters, a free-space reserve so the bag can always be closed (a full disk
stops the recording with a readable bag instead of a truncated file), and a close that
never raises twice.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import yaml

from sst_ros.data.bag import ARRAY_FILE, audio_typestore
from sst_ros.errors import BagError
from sst_ros.geometry import MicArray

__all__ = ["BagSink", "MCAP_CHUNK_BYTES"]

MCAP_CHUNK_BYTES = 2**20  # rosbags buffers up to this much before writing a chunk
_CLOSE_MARGIN_BYTES = 256 * 1024  # summary + metadata.yaml


class BagSink:
    """A bag folder being written.

    Args:
        path: bag folder to create (must not exist: bags are never overwritten).
        geometry: array geometry written to ``<path>/array.yaml`` (or None).
        min_free_bytes: stop with :class:`BagError` before free space falls below this
            plus the writer's buffer, so that closing always succeeds.
    """

    def __init__(self, path: Path, geometry: MicArray | None, min_free_bytes: int) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer, WriterError

        self.path = Path(path)
        self.min_free_bytes = int(min_free_bytes)
        self.bytes_written = 0
        self.messages = 0
        self.first_ns: int | None = None
        self.last_ns: int | None = None
        self._conns: dict[str, object] = {}
        self._store = audio_typestore()
        if self.path.exists():
            raise BagError(f"{self.path} exists already; record_target never overwrites a bag: choose another 'out'")
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
        if geometry is not None:
            try:
                (self.path / ARRAY_FILE).write_text(yaml.safe_dump(geometry.to_dict(), sort_keys=False))
            except OSError as err:
                self.close()
                raise BagError(f"cannot write {self.path / ARRAY_FILE}: {err.strerror}") from err

    @property
    def is_open(self) -> bool:
        """True until :meth:`close`."""
        return self._writer is not None

    def free_bytes(self) -> int:
        """Free space on the bag's file system, bytes."""
        return shutil.disk_usage(self.path if self.path.exists() else self.path.parent).free

    def _check_space(self, incoming: int) -> None:
        need = self.min_free_bytes + MCAP_CHUNK_BYTES + _CLOSE_MARGIN_BYTES + incoming
        free = self.free_bytes()
        if free < need:
            raise BagError(
                f"disk almost full: {free / 1e6:.1f} MB free on the file system of {self.path}, "
                f"{need / 1e6:.1f} MB needed to keep writing and close the bag safely; free space or "
                "record elsewhere ('out'); the bag written so far is kept"
            )

    def write(self, topic: str, msgtype: str, timestamp_ns: int, data: bytes, offered_qos: Sequence = ()) -> None:
        """Append one serialized (CDR) message.

        ``offered_qos`` (``rosbags.interfaces.Qos`` list) is stored with the topic when it is
        first written, so that ``ros2 bag play`` offers the same QoS (e.g. latched AudioInfo).

        Raises:
            BagError: no room left (the sink is then closed, the bag valid) or a write failure.
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
        except BagError:
            self.close()
            raise
        except OSError as err:
            self.close()
            raise BagError(f"writing bag {self.path} failed: {err.strerror or err}; the bag was closed") from err
        self.bytes_written += len(data)
        self.messages += 1
        self.first_ns = timestamp_ns if self.first_ns is None else self.first_ns
        self.last_ns = timestamp_ns

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
        except (OSError, Exception) as err:  # rosbags may raise its own errors wrapping OSError
            raise BagError(f"closing bag {self.path} failed: {err}; it may be truncated") from err

    @staticmethod
    def disk_usage_bytes(path: Path) -> int:
        """Bytes used by the files of a bag folder."""
        return sum(f.stat().st_size for f in Path(path).glob("*") if f.is_file())
