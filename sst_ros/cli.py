"""The ``sst`` command: one entry point, one subcommand per job.

Each subcommand lives beside the code it drives and exposes ``register(subparsers)``,
which adds its parser and sets ``func`` (called with the parsed namespace, returns an exit
code). Modules are imported lazily so ``sst --help`` stays fast and the science
subcommands never import rclpy.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from sst_ros.errors import SstError

__all__ = ["main"]

# subcommand -> module that defines register(subparsers)
SUBCOMMANDS: dict[str, str] = {
    "simulate": "sst_ros.sim.cli",
    "train": "sst_ros.train.cli",
    "evaluate": "sst_ros.train.evaluate_cli",
    "predict": "sst_ros.train.predict_cli",
    "adapt": "sst_ros.adapt.cli",
    "demo": "sst_ros.ros.demo",
}


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
        except ModuleNotFoundError as err:
            if err.name is None or not err.name.startswith("sst_ros"):
                raise
            sub.add_parser(name, help=f"unavailable: {err}")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``sst``; returns the process exit code (2 for usage and input errors)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    selected = next((a for a in argv if a in SUBCOMMANDS), None)
    parser = build_parser(selected)
    args = parser.parse_args(argv)
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
    except KeyboardInterrupt:
        print(f"sst {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
