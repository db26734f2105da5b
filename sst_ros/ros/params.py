"""Small helpers to declare typed, documented ROS parameters (used by the sst_ros nodes)."""

from __future__ import annotations

from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node

__all__ = ["declare"]


def declare(
    node: Node,
    name: str,
    default: Any,
    description: str,
    *,
    read_only: bool = False,
    min_value: float | None = None,
    max_value: float | None = None,
) -> Any:
    """Declare parameter ``name`` with a descriptor and return its value.

    ``min_value``/``max_value`` become a range constraint (integer or floating point,
    following the type of ``default``); rclpy then rejects values outside it.
    """
    desc = ParameterDescriptor(description=description, read_only=read_only)
    if min_value is not None or max_value is not None:
        if isinstance(default, bool):
            pass
        elif isinstance(default, int):
            desc.integer_range = [
                IntegerRange(
                    from_value=int(min_value if min_value is not None else -(2**63)),
                    to_value=int(max_value if max_value is not None else 2**63 - 1),
                    step=0,
                )
            ]
        elif isinstance(default, float):
            desc.floating_point_range = [
                FloatingPointRange(
                    from_value=float(min_value if min_value is not None else -1e308),
                    to_value=float(max_value if max_value is not None else 1e308),
                    step=0.0,
                )
            ]
    return node.declare_parameter(name, default, desc).value
