"""``mltem export CHECKPOINT --out DIR``: ONNX model + model card."""
from __future__ import annotations


def add_arguments(p) -> None:
    p.add_argument("checkpoint", help="model.ckpt written by 'mltem train'")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for <name>.onnx and <name>.json (e.g. models/)")
    p.add_argument("--name", help="registry name of the model (default: the config's export.name or the task)")
    p.add_argument("--atol", type=float, default=1e-4, help="largest allowed torch vs onnxruntime difference")
    p.add_argument("--force", action="store_true", help="replace an existing model of the same name")


def run(args) -> int:
    from pathlib import Path

    from mltem._errors import MltemError
    from mltem.training import export_checkpoint, load_checkpoint

    ckpt = load_checkpoint(args.checkpoint)
    name = args.name or ckpt["config"].get("export", {}).get("name") or ckpt["task"]
    target = Path(args.out) / f"{name}.onnx"
    if (target.exists() or target.with_suffix(".json").exists()) and not args.force:
        raise MltemError("a model of that name exists; pass --force to replace it or --name to choose another", path=target)
    card = export_checkpoint(args.checkpoint, args.out, name=name, atol=args.atol)
    print(f"{card.path}  sha256 {card.sha256}  parity {card.metrics['onnx_parity_max_abs']:.2g}")
    return 0
