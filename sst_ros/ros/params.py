"""Parameters and entry points of the sst_ros nodes: one way to declare, document, run and report them.

Each node describes its parameters in one table (name -> :class:`ParamSpec`) and declares
them all with :func:`declare_parameters`, which turns a value of the wrong type or out of range
into a one-line :class:`~sst_ros.errors.ConfigError` naming the parameter, the value and what
is allowed. ``-h``/``--help`` prints the usage and the same table (names, types, defaults,
ranges, descriptions: :func:`help_text`) without starting rclpy. Every ``main`` runs its node
in a :func:`node_session`, which answers ``--help`` when given the table, reports start-up
errors the same way (:func:`startup_error`, exit status :data:`STARTUP_ERROR_STATUS`, no
traceback), ends quietly on Ctrl-C or an external shutdown, and always destroys the node and
shuts rclpy down.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rclpy
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException, ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.utilities import remove_ros_args

from sst_ros.errors import ConfigError, SstError

__all__ = [
    "DIAGNOSTICS_PARAMETERS",
    "STARTUP_ERROR_STATUS",
    "NodeSession",
    "ParamSpec",
    "declare_parameters",
    "descriptor",
    "help_asked",
    "help_text",
    "node_key_matches",
    "node_session",
    "parameter_error",
    "params_file_applies",
    "print_help_if_asked",
    "range_text",
    "startup_error",
    "usage",
]

#: Exit status of a node that cannot start (bad parameter, missing file, ...), as argparse's usage errors.
STARTUP_ERROR_STATUS = 2


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


#: Parameters of every node that reports its health on ``/diagnostics`` (:mod:`sst_ros.ros.diagnostics`).
DIAGNOSTICS_PARAMETERS: dict[str, ParamSpec] = {
    "diagnostics_period_s": ParamSpec(
        1.0, "publish the node's health on /diagnostics this often, s (0 = off); a new fault is published at once",
        True, 0.0, 60.0,
    ),
}


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


def _type_name(value: Any) -> str:
    """rclpy's name of the parameter type of ``value`` (``INTEGER``, ``DOUBLE``, ``STRING_ARRAY``, ...)."""
    try:
        return Parameter.Type.from_parameter_value(value).name
    except TypeError:
        return type(value).__name__


_TYPE_WORDS = {
    "BOOL": "true or false",
    "INTEGER": "an integer",
    "DOUBLE": "a number with a decimal point, e.g. 1.0 rather than 1",
    "STRING": "a string",
    "STRING_ARRAY": "a list of strings, e.g. \"['a', 'b']\"",
    "INTEGER_ARRAY": "a list of integers, e.g. \"[1, 2]\"",
    "DOUBLE_ARRAY": "a list of numbers, e.g. \"[1.0, 2.0]\"",
    "BOOL_ARRAY": "a list of true/false values",
}


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def range_text(spec: ParamSpec) -> str:
    """The allowed range of ``spec``: ``[low, high]``, ``>= low``, ``<= high``, or ``''`` for none."""
    if isinstance(spec.default, bool) or not isinstance(spec.default, (int, float)):
        return ""
    if spec.min_value is not None and spec.max_value is not None:
        return f"[{_bound(spec.min_value)}, {_bound(spec.max_value)}]"
    if spec.min_value is not None:
        return f">= {_bound(spec.min_value)}"
    if spec.max_value is not None:
        return f"<= {_bound(spec.max_value)}"
    return ""


def _in_range(spec: ParamSpec, value: Any) -> bool:
    low = spec.min_value if spec.min_value is not None else -float("inf")
    high = spec.max_value if spec.max_value is not None else float("inf")
    return bool(low <= value <= high)


def _given_value(node: Node, name: str) -> Any:
    """The value given for ``name`` on the command line or in a parameters file (None if unknown).

    rclpy keeps these in ``Node._parameter_overrides`` (the same in every distribution since
    Foxy); its exceptions carry the value only inside their message.
    """
    overrides = getattr(node, "_parameter_overrides", None)
    given = overrides.get(name) if isinstance(overrides, Mapping) else None
    return getattr(given, "value", None)


def parameter_error(name: str, spec: ParamSpec, given: Any, err: ParameterException) -> ConfigError:
    """A one-line :class:`ConfigError` for a value of ``name`` that rclpy refused at declaration.

    Names the parameter, the value given and what is allowed (type or range), and the fix.

    Args:
        name: parameter name. spec: its table entry. given: the value given (None if unknown).
        err: rclpy's exception (``InvalidParameterTypeException`` / ``InvalidParameterValueException``).
    """
    expected = _type_name(spec.default)
    shown = "?" if given is None else repr(given)
    if isinstance(err, InvalidParameterTypeException) or (given is not None and _type_name(given) != expected):
        got = "" if given is None else f", got {_type_name(given)}"
        return ConfigError(
            f"bad parameter '{name}' = {shown}: must be {expected} ({_TYPE_WORDS.get(expected, expected)}){got}; "
            f"fix the value (default {_show(spec.default)}; see --help)"
        )
    allowed = range_text(spec)
    if allowed and isinstance(given, (int, float)) and not _in_range(spec, given):
        return ConfigError(
            f"bad parameter '{name}' = {shown}: outside the allowed range {allowed}; "
            f"give a value in {allowed} (default {_show(spec.default)}; see --help)"
        )
    reason = " ".join(str(err).split())
    return ConfigError(f"bad parameter '{name}' = {shown}: {reason}; fix the value (see --help)")


def declare_parameters(node: Node, table: Mapping[str, ParamSpec]) -> dict[str, Any]:
    """Declare every parameter of ``table`` on ``node``; return their values (overrides applied).

    Raises:
        ConfigError: a value (``-p name:=value`` or a parameters file) of the wrong type or out
            of range; one line naming the parameter, the value and what is allowed.
    """
    for name, spec in table.items():
        try:
            node.declare_parameter(name, spec.default, descriptor(name, spec))
        except (InvalidParameterTypeException, InvalidParameterValueException) as err:
            raise parameter_error(name, spec, _given_value(node, name), err) from err
    return {name: node.get_parameter(name).value for name in table}


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value or "''"
    return str(value)


_KINDS = {"BOOL": "bool", "INTEGER": "int", "DOUBLE": "float", "STRING": "string", "STRING_ARRAY": "strings"}


def help_text(table: Mapping[str, ParamSpec]) -> str:
    """The parameter table for ``--help``: name, type, default, allowed range, description.

    Parameters that can be changed while the node runs (``ros2 param set``) are marked
    ``[run time]``; the others are read-only.
    """
    rows = [
        (name, _KINDS.get(_type_name(spec.default), _type_name(spec.default).lower()), _show(spec.default),
         range_text(spec), spec.description + ("" if spec.read_only else " [run time]"))
        for name, spec in table.items()
    ]
    head = ("name", "type", "default", "range", "description")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    lines = ["  " + "  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4]
             for r in [head, *rows]]
    return (
        "Parameters (--ros-args -p name:=value, or --params-file FILE):\n"
        + "\n".join(lines)
        + "\n  [run time]: can be changed while the node runs (ros2 param set); the others are read-only."
    )


def usage(prog: str) -> str:
    """One usage line: the ROS arguments a node understands."""
    return (
        f"usage: {prog} [-h] [--ros-args [-p NAME:=VALUE ...] [--params-file FILE] [-r __ns:=/NAMESPACE] "
        "[-r FROM:=TO ...]]"
    )


def help_asked(argv: Sequence[str]) -> bool:
    """True when the command line ``argv`` (program name first, ROS arguments allowed) holds ``-h``/``--help``."""
    return any(a in ("-h", "--help") for a in remove_ros_args(list(argv))[1:])


def print_help_if_asked(
    argv: Sequence[str], doc: str | None, table: Mapping[str, ParamSpec] | None, prog: str | None = None
) -> bool:
    """Print the usage, ``doc`` and the parameter table when ``argv`` asks for ``-h``/``--help``.

    Needs no rclpy context (nothing is initialised, no node is made).

    Args:
        argv: command line, program name first (``sys.argv``). doc: the node's description.
        table: the node's parameter table (None: usage and ``doc`` only).
        prog: program name for the usage line (default: the file name of ``argv[0]``, without ``.py``).
    Returns:
        True when help was printed (the caller then exits with status 0).
    """
    if not help_asked(argv):
        return False
    name = prog or (Path(argv[0]).name.removesuffix(".py") if argv else "node")
    parts = [usage(name)]
    if doc:
        parts.append(doc.strip())
    if table is not None:
        parts.append(help_text(table))
    print("\n\n".join(parts))
    return True


def startup_error(prog: str, err: Exception) -> int:
    """Report an error that stops a node from starting (one line on stderr); returns :data:`STARTUP_ERROR_STATUS`."""
    if isinstance(err, ParameterException):  # refused outside declare_parameters (e.g. a later set)
        text = f"bad parameter: {err}; see --help"
    else:
        text = str(err)
    print(f"{prog}: error: {text}", file=sys.stderr)
    return STARTUP_ERROR_STATUS


def node_key_matches(key: str, node_fqn: str) -> bool:
    """True when the node key ``key`` of a parameters file applies to the node ``node_fqn``.

    The rule of rcl/rclcpp/rclpy: a key without a leading ``/`` gets one (so ``tracker`` means
    ``/tracker``, the node in the root namespace only); ``/*`` stands for one name token and
    ``/**`` for any number of them; the whole fully qualified name must match.

    Args:
        key: a top-level key of the file, e.g. ``/**``, ``/**/tracker``, ``tracker``.
        node_fqn: fully qualified node name, e.g. ``/robot1/tracker``.
    """
    name = key if key.startswith("/") else "/" + key
    first, *rest = name.split("/*")
    pattern = re.escape(first)
    for part in rest:  # "/*" -> one token; "/**" -> "(/\w+)*": any number of tokens
        star = part.startswith("*")
        pattern += "(/\\w+)" + ("*" if star else "") + re.escape(part[1:] if star else part)
    return re.fullmatch(pattern, node_fqn) is not None


def params_file_applies(path: str | os.PathLike[str], node_fqn: str) -> bool:
    """True when the parameters YAML ``path`` holds ``ros__parameters`` for the node ``node_fqn``.

    Raises:
        ConfigError: the file cannot be read or is not a ROS parameters file.
    """
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read parameters file {path}: {err}; give a readable YAML file") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not a ROS parameters file; expected '/**:' then 'ros__parameters:'")
    return any(
        isinstance(value, dict) and "ros__parameters" in value and node_key_matches(str(key), node_fqn)
        for key, value in data.items()
    )


@dataclass
class NodeSession:
    """What :func:`node_session` cleans up and reports.

    Attributes:
        node: set it once the node is made: it is destroyed at the end.
        on_exit: called first at the end, in order (e.g. an executor's ``shutdown``).
        status: exit status: 0, or :data:`STARTUP_ERROR_STATUS` after a start-up error.
    """

    node: Node | None = None
    on_exit: list[Callable[[], object]] = field(default_factory=list)
    status: int = 0


@contextmanager
def node_session(
    prog: str,
    args: Sequence[str] | None = None,
    *,
    parameters: Mapping[str, ParamSpec] | None = None,
    doc: str | None = None,
    **init_kwargs: Any,
) -> Iterator[NodeSession]:
    """``rclpy.init``, then the body; errors reported, everything destroyed and shut down at the end.

    ``-h``/``--help`` on the command line prints the usage, ``doc`` and the ``parameters``
    table and raises ``SystemExit(0)`` (as argparse does) before rclpy is initialised: no
    context, no node, no DDS participant. An :class:`~sst_ros.errors.SstError` (including a
    bad parameter value from :func:`declare_parameters`) or an rclpy parameter error ends the
    body with :func:`startup_error` (one line on stderr, ``session.status`` =
    :data:`STARTUP_ERROR_STATUS`); Ctrl-C and an external shutdown end it quietly, also when they
    interrupt a callback that was using the context.

    Args:
        prog: program name for the usage and error lines.
        args: command line with ROS arguments, program name first (None: ``sys.argv``).
        parameters: the node's parameter table, printed by ``--help``.
        doc: the node's description for ``--help`` (e.g. its module's ``__doc__``).
        init_kwargs: more ``rclpy.init`` arguments (e.g. ``signal_handler_options``).
    Raises:
        SystemExit: status 0 after printing the help.
    """
    if print_help_if_asked(sys.argv if args is None else list(args), doc, parameters, prog=prog):
        raise SystemExit(0)
    rclpy.init(args=None if args is None else list(args), **init_kwargs)
    session = NodeSession()
    try:
        yield session
    except (SstError, ParameterException) as err:
        session.status = startup_error(prog, err)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if rclpy.ok():
            raise
        # Ctrl-C shut the context down while a callback was using it (e.g. publishing: "publisher's
        # context is invalid"): the stop was asked for, so it is a normal exit
    finally:
        for cleanup in session.on_exit:
            cleanup()
        if session.node is not None:
            session.node.destroy_node()
        rclpy.try_shutdown()
