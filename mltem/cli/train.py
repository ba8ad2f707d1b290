"""``mltem train TASK --config FILE --out DIR``: train a task's network."""
from __future__ import annotations

from mltem.cli._main import add_output_arguments


def add_arguments(p) -> None:
    p.add_argument("task", help="task to train (segment, index, valence, fronts, ...)")
    p.add_argument("--config", required=True, metavar="FILE", help="YAML training config (see train/configs/)")
    add_output_arguments(p)
    p.add_argument("--seed", type=int, help="override the config's seed")
    p.add_argument("--max-epochs", type=int, help="override the config's max_epochs")
    p.add_argument("--init-from", metavar="CKPT_OR_MODEL",
                   help="fine-tune: start from the weights of this model.ckpt or shipped ONNX model (name, card or .onnx)")
    p.add_argument("--element", metavar="EL", help="valence task: the element (sets data.element)")
    p.add_argument("--references", metavar="DIR",
                   help="valence task: folder of reference spectra with references.csv (file, valence)")
    p.add_argument("--export", metavar="DIR", help="also export the trained model to ONNX in DIR")
    p.add_argument("--phase", action="append", metavar="CIF_OR_NAME",
                   help="index task only: train on these phases (CIF files or built-in names; repeat) instead of the "
                        "config's; the model is exported as index-<phase names>")


def run(args) -> int:
    import logging

    from mltem._errors import MltemError, require
    from mltem.io import OutputDir
    from mltem.training import export_checkpoint, get_task, load_config, train

    require("lightning.pytorch", feature="training")  # configures its loggers on import; quieten them after
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    cfg = load_config(args.config, seed=args.seed, max_epochs=args.max_epochs, init_from=getattr(args, "init_from", None))
    if cfg.task != args.task:
        raise MltemError(f"config is for task '{cfg.task}', not '{args.task}'", path=args.config)
    get_task(cfg.task).apply_options(cfg, phase=args.phase, element=args.element, references=args.references)
    inputs = [args.config] + ([cfg.init_from] if cfg.init_from else [])
    out = OutputDir(args.out, force=args.force, inputs=inputs, command="train")
    with out.timer("train"):
        res = train(cfg, out.path, progress_bar=not args.quiet)
    out.record(res["checkpoint"])
    results = {k: v for k, v in res.items() if k != "checkpoint"}
    models = []
    if args.export:
        with out.timer("export"):
            card = export_checkpoint(res["checkpoint"], args.export)
        models.append({"name": card.name, "file": str(card.path), "sha256": card.sha256})
        results["onnx_parity_max_abs"] = card.metrics["onnx_parity_max_abs"]
    out.write_summary(parameters=cfg.to_dict(), results=results, models=models)
    print(f"checkpoint: {res['checkpoint']}")
    for k, v in res["metrics"].items():
        print(f"{k}: {v:.4g}")
    return 0
