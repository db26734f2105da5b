"""``sst export --onnx [MODEL.pt] OUT.onnx``: a checkpoint as an ONNX file robots run without torch.

The file runs without torch wherever a model is given: the tracker node's ``model`` parameter
and ``sst predict --model`` with ``pip install sst_ros[onnx]``, ``sst evaluate --model`` with
``pip install sst_ros[eval]`` (its baselines need pyroomacoustics, its plots matplotlib). The
package ships ``sst_ros/models/default.onnx``, the export of ``default.pt``, which is the
default model where torch is not installed. Exporting needs torch and the exporter (``pip
install sst_ros[export]``); importing this module imports neither (``sst --help``), the
exporter is imported when the command runs.
"""

from __future__ import annotations

import argparse

from sst_ros.model.onnx_format import DEFAULT_TOLERANCE  # torch-free, unlike onnx_export

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``export`` subcommand to the ``sst`` parser."""
    p = subparsers.add_parser(
        "export",
        help="export a checkpoint to ONNX, which runs without torch (pip install sst_ros[onnx])",
        description=(
            "Export a checkpoint's streaming step (one 100 ms output frame per call, the GRU and convolution "
            "state as explicit inputs and outputs) to ONNX, with the geometry, feature and network configuration, "
            "provenance and the checkpoint's SHA-256 in the file's metadata. The graph is checked against torch on "
            "a test signal first; a file that disagrees by more than --tolerance is not written. Give the file as "
            "the model to the tracker node or `sst predict` (needs `pip install sst_ros[onnx]`, no torch) or to "
            "`sst evaluate` (`pip install sst_ros[eval]`: adds pyroomacoustics for the baselines and matplotlib for "
            "the plots)."
        ),
    )
    p.add_argument("--onnx", action="store_true", required=True, help="export to ONNX (the one format)")
    p.add_argument("model", nargs="?", default=None, help="checkpoint (.pt); default: the shipped default model")
    p.add_argument("out", help="ONNX file to write (.onnx)")
    p.add_argument(
        "--tolerance", type=float, default=DEFAULT_TOLERANCE,
        help="largest accepted |onnx - torch| of any output or state value (default: %(default)g)",
    )  # fmt: skip
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Export and print what was written. Returns 0."""
    from sst_ros.model.onnx_export import export_onnx

    res = export_onnx(args.model, args.out, tolerance=args.tolerance)
    d = res.difference
    print(
        f"exported {res.source} -> {res.path} ({res.size_bytes / 1e6:.2f} MB, checkpoint sha256 {res.sha256[:16]}...); "
        f"checked against torch over {d.n_frames} frames: max |onnx - torch| = {d.outputs:.2e} (spectrum, "
        f"activity), {d.state:.2e} relative (state)"
    )
    return 0
