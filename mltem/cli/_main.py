"""Parser, dispatch and error handling of the ``mltem`` command.

Each command lives in its own module with ``add_arguments(parser)`` and ``run(args)``;
modules are imported only when their command runs, so ``mltem --help`` and inference
commands never import torch.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from mltem import __version__
from mltem._errors import MltemError

# name -> (module, one-line help). Commands whose module is None are not built yet.
COMMANDS: dict[str, tuple[str | None, str]] = {
    "info": ("mltem.cli.info", "print shape, axes, calibration and signal type of a file"),
    "gpa": ("mltem.cli.gpa", "strain maps (exx, eyy, exy, rotation) from HRTEM/HAADF images by geometric phase analysis"),
    "holo": ("mltem.cli.holo", "phase, amplitude, potential and charge maps from off-axis electron holograms"),
    "valence": ("mltem.cli.valence", "oxidation state, white-line ratio and L3 onset from EELS L2,3 edges"),
    "index": ("mltem.cli.index", "phase, zone axis and in-plane angle of SAED patterns"),
    "segment": ("mltem.cli.segment", "masks of electrode, SEI, lithium and bubbles in in-situ movies, with metrics"),
    "fronts": ("mltem.cli.fronts", "reaction-front position in every frame and its kinetics"),
    "simulate": ("mltem.cli.simulate", "labelled synthetic data for a task"),
    "train": ("mltem.cli.train", "train a task's network from a YAML config"),
    "export": ("mltem.cli.export", "export a trained checkpoint to ONNX with a model card"),
    "models": ("mltem.cli.models", "list the installed models and verify their sha256"),
    "demo": ("mltem.cli.demo", "run every task on the shipped examples and write a report"),
}

log = logging.getLogger("mltem")


def add_output_arguments(p: argparse.ArgumentParser) -> None:
    """The ``--out DIR`` / ``--force`` pair every writing command takes."""
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created; must be empty unless --force)")
    p.add_argument("--force", action="store_true", help="write into a non-empty output folder")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mltem",
        description="Automatic, fast interpretation of in-situ TEM data from battery research.",
    )
    parser.add_argument("--version", action="version", version=f"mltem {__version__}")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    parser.add_argument("--threads", type=int, metavar="N", help="threads for onnxruntime and FFTs (default: all cores)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in COMMANDS.items():
        if module is None:
            p = sub.add_parser(name, help=f"{help_} [not built yet]", description=f"{help_}. Not built yet.")
            p.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        else:
            p = sub.add_parser(name, help=help_, description=help_[0].upper() + help_[1:] + ".")
            importlib.import_module(module).add_arguments(p)
    return parser


def _quiet_libraries() -> None:
    import mltem.io._load

    mltem.io._load.QUIET_LIBRARIES = True
    for name in ("hyperspy", "rsciio", "exspy"):
        logging.getLogger(name).propagate = False
    for name in ("tifffile", "imageio", "h5py", "numexpr", "matplotlib", "PIL"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    for name in ("lightning", "lightning.pytorch", "pytorch_lightning", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)


def main(argv=None) -> int:
    """Entry point of the ``mltem`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    _quiet_libraries()
    from mltem._progress import set_progress

    set_progress(not args.quiet and sys.stderr.isatty() or os.environ.get("MLTEM_PROGRESS") == "1")
    if args.threads is not None:
        if args.threads < 1:
            print("mltem: error: --threads must be >= 1", file=sys.stderr)
            return 2
        os.environ["MLTEM_THREADS"] = str(args.threads)
    module, _ = COMMANDS[args.command]
    if module is None:
        print(f"mltem {args.command}: not built yet in mltem {__version__}", file=sys.stderr)
        return 2
    try:
        return int(importlib.import_module(module).run(args) or 0)
    except MltemError as exc:
        if args.debug:
            raise
        print(f"mltem {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `mltem models | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"mltem {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the user gets one line, --debug gives the rest
        if args.debug:
            raise
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(
            f"mltem {args.command}: internal error: {type(exc).__name__}: {msg[:300]} "
            "(run with --debug for the traceback and report it)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
