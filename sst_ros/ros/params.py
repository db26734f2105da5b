"""Parameters and entry points of the sst_ros nodes: one way to declare, document, run and report them.

Each node describes its parameters in one table (name -> :class:`ParamSpec`) and declares
them all with :func:`declare_parameters`; ``--help`` prints the same table
(:func:`print_help_if_asked`). Every ``main`` runs its node in a :func:`node_session`, which
reports start-up errors the same way (:func:`startup_error`, exit status 2), ends quietly on
Ctrl-C or an external shutdown, and always destroys the node and shuts rclpy down.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import rclpy
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.utilities import remove_ros_args

from sst_ros.errors import SstError

__all__ = [
    "NodeSession",
    "ParamSpec",
    "declare_parameters",
    "descriptor",
    "help_text",
    "node_session",
    "print_help_if_asked",
    "startup_error",
]


@dataclass(frozen=True)
class ParamSpec:
    """One node parameter.

    Attributes:
        default: default value; its type is the parameter's type (int, float, str, bool, list).
        description: what it means, with units.
        read_only: True where a change at run time makes no sense (topics, files, sizes).
        min_value: lower bound (rclpy rejects values outside), or None.
        max_value: upper bound, or None.
    """

    default: Any
    description: str
    read_only: bool = True
    min_value: float | None = None
    max_value: float | None = None


def descriptor(name: str, spec: ParamSpec) -> ParameterDescriptor:
    """The ``ParameterDescriptor`` of ``spec``: type from the default, range from the bounds."""
    desc = ParameterDescriptor(
        name=name,
        description=spec.description,
        read_only=spec.read_only,
        type=int(Parameter.Type.from_parameter_value(spec.default)),
    )
    if spec.min_value is None and spec.max_value is None or isinstance(spec.default, bool):
        return desc
    if isinstance(spec.default, int):
        desc.integer_range = [
            IntegerRange(
                from_value=int(spec.min_value if spec.min_value is not None else -(2**63)),
                to_value=int(spec.max_value if spec.max_value is not None else 2**63 - 1),
                step=0,
            )
        ]
    elif isinstance(spec.default, float):
        desc.floating_point_range = [
            FloatingPointRange(
                from_value=float(spec.min_value if spec.min_value is not None else -1e308),
                to_value=float(spec.max_value if spec.max_value is not None else 1e308),
                step=0.0,
            )
        ]
    return desc


def declare_parameters(node: Node, table: Mapping[str, ParamSpec]) -> dict[str, Any]:
    """Declare every parameter of ``table`` on ``node``; return their values (overrides applied).

    Raises:
        rclpy.exceptions.ParameterException: a value of the wrong type or out of range.
    """
    for name, spec in table.items():
        node.declare_parameter(name, spec.default, descriptor(name, spec))
    return {name: node.get_parameter(name).value for name in table}


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value or "''"
    return str(value)


def help_text(table: Mapping[str, ParamSpec]) -> str:
    """``Parameters (-p name:=value):`` then one line per parameter: name [default] description."""
    width = max((len(n) for n in table), default=0)
    lines = [f"  {name:<{width}} [{_show(spec.default)}] {spec.description}" for name, spec in table.items()]
    return "Parameters (-p name:=value):\n" + "\n".join(lines)


def print_help_if_asked(argv: Sequence[str], doc: str | None, table: Mapping[str, ParamSpec]) -> bool:
    """Print ``doc`` and the parameter table when ``argv`` (with ROS arguments) asks for ``-h``/``--help``."""
    if not any(a in ("-h", "--help") for a in remove_ros_args(list(argv))[1:]):
        return False
    print(doc or "")
    print(help_text(table))
    return True


def startup_error(prog: str, err: Exception) -> int:
    """Report an error that stops a node from starting (stderr); returns the exit status (2)."""
    if isinstance(err, ParameterException):  # wrong type or out of range (-p name:=value)
        print(f"{prog}: error: bad parameter: {err}; see --help", file=sys.stderr)
    else:
        print(f"{prog}: error: {err}", file=sys.stderr)
    return 2


@dataclass
class NodeSession:
    """What :func:`node_session` cleans up and reports.

    Attributes:
        node: set it once the node is made: it is destroyed at the end.
        on_exit: called first at the end, in order (e.g. an executor's ``shutdown``).
        status: exit status: 0, or 2 after a start-up error.
    """

    node: Node | None = None
    on_exit: list[Callable[[], object]] = field(default_factory=list)
    status: int = 0


@contextmanager
def node_session(prog: str, args: Sequence[str] | None = None, **init_kwargs: Any) -> Iterator[NodeSession]:
    """``rclpy.init``, then the body; errors reported, everything destroyed and shut down at the end.

    An :class:`~sst_ros.errors.SstError` or a bad parameter ends the body with
    :func:`startup_error` (``session.status`` 2); Ctrl-C and an external shutdown end it quietly.

    Args:
        prog: program name for error lines. args: command line (with ROS arguments).
        init_kwargs: more ``rclpy.init`` arguments (e.g. ``signal_handler_options``).
    """
    rclpy.init(args=None if args is None else list(args), **init_kwargs)
    session = NodeSession()
    try:
        yield session
    except (SstError, ParameterException) as err:
        session.status = startup_error(prog, err)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        for cleanup in session.on_exit:
            cleanup()
        if session.node is not None:
            session.node.destroy_node()
        rclpy.try_shutdown()
