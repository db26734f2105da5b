"""The ``sst`` command: one entry point, one subcommand per job.

Each subcommand lives beside the code it drives and exposes ``register(subparsers)``,
which adds its parser and sets ``func`` (called with the parsed namespace, returns an exit
code). Modules are imported lazily so ``sst --help`` stays fast and the science
subcommands never import rclpy.

Without torch, ``pip install sst_ros[onnx]`` runs ``sst predict`` with an ``.onnx`` model (or
the shipped default's export), and ``pip install sst_ros[eval]`` adds ``sst evaluate`` of one
with the classical baselines and plots; simulating, training, adapting and exporting need
torch (``[train]``, ``[export]``). A subcommand whose module needs a package that is not
installed (:data:`OPTIONAL_PACKAGES`) is listed as unavailable and, when run, fails with the
install that fixes it (:data:`COMMAND_INSTALL` first), as does a command that meets one later,
naming the option that runs it without that package where there is one (:data:`RUNS_WITHOUT`).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from sst_ros.errors import SstError

__all__ = ["COMMAND_INSTALL", "OPTIONAL_PACKAGES", "RUNS_WITHOUT", "main"]

# subcommand -> module that defines register(subparsers)
SUBCOMMANDS: dict[str, str] = {
    "simulate": "sst_ros.sim.cli",
    "train": "sst_ros.train.cli",
    "evaluate": "sst_ros.train.evaluate_cli",
    "predict": "sst_ros.train.predict_cli",
    "adapt": "sst_ros.adapt.cli",
    "export": "sst_ros.model.onnx_cli",
    "demo": "sst_ros.ros.demo",
}

_TRAIN = "`pip install sst_ros[train]`"
#: Top-level module a subcommand may need that a plain install lacks -> how to install it.
OPTIONAL_PACKAGES: dict[str, str] = {
    "torch": _TRAIN,
    "pyroomacoustics": _TRAIN,
    "matplotlib": _TRAIN,
    "tqdm": _TRAIN,
    "onnx": "`pip install sst_ros[export]`",
    "onnxscript": "`pip install sst_ros[export]`",
    "onnxruntime": "`pip install sst_ros[onnx]`",
    "rclpy": "a ROS 2 installation (source its setup file)",
}
#: Subcommand -> the install that gives it everything it needs (wins over the package's own).
COMMAND_INSTALL: dict[str, str] = {
    "export": "`pip install sst_ros[export]`",
    # torch-free: baselines (pyroomacoustics) and plots (matplotlib); a .pt model's torch is named by load_model
    "evaluate": "`pip install sst_ros[eval]`",
    "predict": "`pip install sst_ros[eval]`",  # --baseline needs pyroomacoustics
}
#: (subcommand, package) -> the option that runs the subcommand without the package.
RUNS_WITHOUT: dict[tuple[str, str], str] = {
    ("evaluate", "pyroomacoustics"): "--baselines none",
    ("evaluate", "matplotlib"): "--no-plots",
}


def _missing_optional(err: ImportError) -> str | None:
    """The optional package whose absence ``err`` reports, or None."""
    name = (err.name or "").split(".")[0]
    return name if name in OPTIONAL_PACKAGES else None


def _install(command: str, package: str) -> str:
    return COMMAND_INSTALL.get(command, OPTIONAL_PACKAGES[package])


def _needs_message(command: str, package: str) -> str:
    install = _install(command, package)
    message = f"sst {command} needs {package}, which is not installed here; install it with {install}"
    option = RUNS_WITHOUT.get((command, package))
    return message if option is None else f"{message}, or run it without {package}: {option}"


def _add_unavailable(sub: argparse._SubParsersAction, name: str, package: str) -> None:
    """A parser for a subcommand that cannot run here: it accepts any arguments and says what to install."""
    message = _needs_message(name, package)
    p = sub.add_parser(name, help=f"unavailable: needs {package} ({_install(name, package)})", description=message)

    def refuse(_: argparse.Namespace) -> int:
        raise SstError(message)

    p.set_defaults(func=refuse, unavailable=True)


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``selected`` only that subcommand's module is imported."""
    parser = argparse.ArgumentParser(prog="sst", description="sst_ros: sound source tracking for robots")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in SUBCOMMANDS.items():
        if selected is not None and name != selected:
            sub.add_parser(name, help=f"(see sst {name} --help)")
            continue
        try:
            importlib.import_module(module).register(sub)
        except ImportError as err:
            package = _missing_optional(err)
            if package is not None:
                _add_unavailable(sub, name, package)
            elif isinstance(err, ModuleNotFoundError) and err.name is not None and err.name.startswith("sst_ros"):
                sub.add_parser(name, help=f"unavailable: {err}")
            else:
                raise
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``sst``; returns the process exit code (2 for usage and input errors)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    selected = next((a for a in argv if a in SUBCOMMANDS), None)
    parser = build_parser(selected)
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "unavailable", False):  # an unavailable command takes any arguments
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(func(args) or 0)
    except SstError as err:
        print(f"sst {args.command}: error: {err}", file=sys.stderr)
        return 2
    except ImportError as err:  # a package imported when the command runs (e.g. torch by `sst train`)
        package = _missing_optional(err)
        if package is None:
            raise
        print(f"sst {args.command}: error: {_needs_message(args.command, package)} ({err})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sst {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
