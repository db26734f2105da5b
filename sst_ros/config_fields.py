"""Dataclass configurations from plain data (YAML, checkpoints): unknown fields are named."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from typing import Any

from sst_ros.errors import ConfigError

__all__ = ["check_fields"]


def check_fields(cls: type, data: Mapping[str, Any], what: str) -> dict[str, Any]:
    """A copy of ``data`` after checking that every key is a field of dataclass ``cls``.

    Args:
        cls: the dataclass the mapping configures.
        data: field name -> value.
        what: what the mapping is (``"model config"``, ``"train config <path>"``), for the message.
    Raises:
        ConfigError: naming the unknown fields and the known ones.
    """
    if not is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    if not isinstance(data, Mapping):
        raise ConfigError(f"{what}: expected a mapping of fields, got {type(data).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"{what}: unknown fields {sorted(unknown)}; known: {sorted(known)}")
    return dict(data)
