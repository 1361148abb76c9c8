"""`workbench export`: a run's model as ONNX, TorchScript or safetensors, its metadata inside and in a JSON
copy beside it (`<file>.json`), read back with its digests verified and checked against PyTorch."""

from __future__ import annotations

import argparse

from workbench.cli.output import Output

# Spelled out (equal to workbench.engine.export.FORMATS) so building the parser does not import torch.
FORMATS = ("onnx", "torchscript", "safetensors")


def register(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser(
        "export", help="export a trained model (ONNX, TorchScript, safetensors + JSON) for use elsewhere"
    )
    export.add_argument(
        "model", metavar="RUN_OR_CHECKPOINT", help="run id (or 'last'), run folder or checkpoint file"
    )
    export.add_argument("--format", required=True, choices=FORMATS)
    export.add_argument(
        "--out",
        metavar="PATH",
        help="folder, or file name with the format's extension (default: the run's exports/ folder)",
    )
    export.add_argument("--json", action="store_true")
    export.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    from workbench.engine.export import export_run

    out = Output(args.json)
    result = export_run(args.model, args.format, args.out)
    for leftover in result.removed_leftovers:
        out.say(f"removed {leftover} (left by an interrupted export)")
    out.say(f"{result.format}: {result.path}")
    out.say(f"metadata: inside the file; a copy in {result.metadata_path}")
    out.say(f"weights: {result.weights_sha256} (verified on every load)")
    out.say(
        f"checked on {result.check_batch} images: max |difference| from PyTorch {result.max_abs_diff:.2e} "
        f"(< {result.tolerance:g})"
    )
    out.result(result.to_dict())
    return 0
