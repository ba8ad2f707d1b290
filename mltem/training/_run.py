"""Run a training config to a checkpoint, and export a checkpoint to ONNX.

The checkpoint ``model.ckpt`` holds only tensors and plain data (config, network
arguments, metrics, a few validation inputs for the export parity check), so it loads
with ``torch.load(weights_only=True)``: no pickled code is ever executed.
"""
from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import numpy as np

from mltem._errors import MltemError, require
from mltem.training._config import TrainConfig
from mltem.training._tasks import get_task

__all__ = ["train", "load_checkpoint", "export_checkpoint", "CHECKPOINT_FORMAT"]

log = logging.getLogger(__name__)
CHECKPOINT_FORMAT = "mltem-checkpoint-1"


def _net_config(cfg: TrainConfig, task) -> dict:
    net = {**task.default_net, **cfg.net}
    if "name" not in net:
        raise MltemError(f"task '{cfg.task}': the config's 'net' needs a 'name'")
    return net


def train(cfg: TrainConfig, out_dir, *, progress_bar: bool = False) -> dict:
    """Train the config's task and write ``out_dir/model.ckpt`` and ``metrics.csv``.

    Runs on the CPU, seeded and deterministic (same config, same weights).

    Parameters
    ----------
    cfg : TrainConfig
    out_dir : path
        Folder for the checkpoint and Lightning's CSV log.
    progress_bar : bool
        Lightning's progress bar.

    Returns
    -------
    dict
        ``checkpoint`` (path), ``metrics`` (last validation figures), ``train_time_s``,
        ``n_train``, ``n_val``.
    """
    require("lightning", feature="training")
    torch = require("torch", feature="training")
    import lightning as L
    from lightning.pytorch.loggers import CSVLogger

    from mltem.io import atomic_write
    from mltem.training._lightning import ArrayDataModule, TaskModule

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    task = get_task(cfg.task)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    t0 = time.perf_counter()
    x, y = task.make_data(cfg)
    t_data = time.perf_counter() - t0
    dm = ArrayDataModule(
        x, y, batch_size=cfg.batch_size, val_fraction=cfg.val_fraction, seed=cfg.seed,
        transform=task.transform(cfg), num_workers=cfg.num_workers,
    )
    net = _net_config(cfg, task)
    module = TaskModule(net=net, loss=task.loss_for(cfg), lr=cfg.lr, weight_decay=cfg.weight_decay, max_epochs=cfg.max_epochs)
    if cfg.init_from:
        _init_weights(module.net, cfg.init_from, net, x[:64])
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=cfg.max_epochs,
        max_steps=cfg.max_steps,
        deterministic=True,
        logger=CSVLogger(str(out_dir), name="logs", version=0),
        enable_checkpointing=False,
        enable_progress_bar=progress_bar,
        enable_model_summary=False,
        log_every_n_steps=1,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*number of training batches.*")
        t1 = time.perf_counter()
        trainer.fit(module, datamodule=dm)
        t_fit = time.perf_counter() - t1
        val = trainer.validate(module, datamodule=dm, verbose=False)[0]
    metrics = {k: float(v) for k, v in val.items()}
    parity = torch.from_numpy(np.ascontiguousarray(dm.val_set.x[:4], dtype=np.float32))
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "task": cfg.task,
        "config": cfg.to_dict(),
        "net": net,
        "state_dict": module.net.state_dict(),
        "metrics": metrics,
        "parity_inputs": parity,
        "timings_s": {"data": t_data, "fit": t_fit},
        "n_train": len(dm.train_set),
        "n_val": len(dm.val_set),
        "global_step": int(trainer.global_step),
    }
    path = out_dir / "model.ckpt"
    with atomic_write(path) as tmp:
        torch.save(ckpt, tmp)
    log.info("trained %s: %d steps in %.1f s; %s", cfg.task, trainer.global_step, t_fit, metrics)
    return {"checkpoint": path, "metrics": metrics, "train_time_s": t_fit, "data_time_s": t_data,
            "n_train": len(dm.train_set), "n_val": len(dm.val_set), "global_step": int(trainer.global_step)}


def _init_weights(net, path, net_config: dict, calibration) -> None:
    """Start from the weights of an earlier model (fine-tuning).

    ``path`` is an mltem checkpoint (``model.ckpt``) or a shipped ONNX model (registry
    name, card or ``.onnx`` with its card; the sha256 is verified): see
    :func:`weights_from_onnx`, which takes ``calibration`` inputs for the batch norms.
    """
    p = Path(path)
    if p.suffix in (".onnx", ".json") or (p.name == str(path) and not p.suffix and not p.exists()):  # a shipped model: name, card or .onnx
        from mltem.infer import OnnxModel

        model = OnnxModel(str(path))
        src_net = {**get_task(model.card.task).default_net, **(model.card.recipe or {}).get("config", {}).get("net", {})}
        where = model.card.path

        def load():
            weights_from_onnx(net, model, calibration)
    else:
        ckpt = load_checkpoint(path)
        src_net, where = ckpt["net"], path

        def load():
            net.load_state_dict(ckpt["state_dict"])
    if src_net != net_config:
        raise MltemError(f"cannot fine-tune from it: its network {src_net} differs from the config's {net_config}", path=where)
    load()
    log.info("initialised the network from %s", where)


def weights_from_onnx(net, model, calibration, *, rtol: float = 1e-3) -> None:
    """Load an exported network's weights back into ``net`` (same architecture).

    ``model`` is what :class:`mltem.infer.OnnxModel` takes (registry name, card or ONNX
    path; the sha256 is verified) or an OnnxModel.

    An export folds every batch norm into the convolution before it, so the ONNX file
    holds, per convolution, the folded weight and a bias. The convolutions of ``net``
    (in the order they run) take the folded weights; each batch norm after one is then
    set so that, in eval mode, it adds exactly the folded bias, and so that its running
    statistics are those of the convolution's output on ``calibration`` (inputs, e.g. a
    few training samples): ``mean = mu``, ``var = s^2``, ``weight = sqrt(s^2 + eps)``,
    ``bias = mu + b``. In eval mode the network then equals the ONNX model; in training
    mode the batch statistics are close to the running ones, so fine-tuning starts from
    the shipped function rather than from a rescaled one. The result is checked
    against the ONNX model on the calibration inputs.

    Raises
    ------
    MltemError
        Convolutions that do not match in number or shape, or outputs that differ.
    """
    import onnx
    import torch
    from onnx import numpy_helper
    from torch import nn

    from mltem.infer import OnnxModel

    model = model if isinstance(model, OnnxModel) else OnnxModel(model)
    onnx_path = model.card.path
    graph = onnx.load(str(onnx_path)).graph
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    onnx_convs = [n for n in graph.node if n.op_type in ("Conv", "ConvTranspose")]
    convs = [m for m in net.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d))]
    bn_after = {}
    for m in net.modules():
        kids = list(m.children())
        for a, b in zip(kids, kids[1:]):
            if isinstance(a, (nn.Conv1d, nn.Conv2d)) and isinstance(b, (nn.BatchNorm1d, nn.BatchNorm2d)):
                bn_after[id(a)] = b
    order = []
    hooks = [c.register_forward_hook(lambda mod, i, o: order.append(mod)) for c in convs]
    x = torch.as_tensor(np.asarray(calibration, np.float32))
    was_training = net.training
    net.eval()
    with torch.no_grad():
        net(x[:1])
    for h in hooks:
        h.remove()
    if len(order) != len(onnx_convs):
        raise MltemError(f"the network runs {len(order)} convolutions, the ONNX model {len(onnx_convs)}", path=onnx_path)
    folded = {}
    with torch.no_grad():
        for mod, node in zip(order, onnx_convs):
            w = init[node.input[1]]
            b = np.array(init[node.input[2]]) if len(node.input) > 2 else np.zeros(w.shape[1 if "Transpose" in node.op_type else 0], np.float32)
            if tuple(w.shape) != tuple(mod.weight.shape):
                raise MltemError(f"convolution weights {tuple(w.shape)} in the ONNX model, {tuple(mod.weight.shape)} in the network",
                                 path=onnx_path)
            mod.weight.copy_(torch.from_numpy(np.array(w)))
            bn = bn_after.get(id(mod))
            if bn is None:
                if mod.bias is None:
                    raise MltemError("an ONNX convolution bias has no place in the network", path=onnx_path)
                mod.bias.copy_(torch.from_numpy(b))
            else:
                folded[id(bn)] = torch.from_numpy(b)
                bn.running_mean.zero_()  # identity + bias while the statistics are gathered
                bn.running_var.fill_(1.0 - bn.eps)
                bn.weight.fill_(1.0)
                bn.bias.copy_(folded[id(bn)])
        stats = {}

        def gather(mod, inp, out):
            z = inp[0].transpose(0, 1).reshape(inp[0].shape[1], -1).double()
            s = stats.setdefault(id(mod), [0, 0.0, 0.0])
            s[0] += z.shape[1]
            s[1] = s[1] + z.sum(1)
            s[2] = s[2] + (z * z).sum(1)

        bns = [b for b in bn_after.values() if id(b) in folded]
        hooks = [b.register_forward_hook(gather) for b in bns]
        for i in range(0, len(x), 8):
            net(x[i : i + 8])
        for h in hooks:
            h.remove()
        for bn in bns:
            n, s1, s2 = stats[id(bn)]
            mu = s1 / n
            var = torch.clamp(s2 / n - mu * mu, min=1e-8)
            bn.running_mean.copy_(mu.float())
            bn.running_var.copy_(var.float())
            bn.weight.copy_(torch.sqrt(var + bn.eps).float())
            bn.bias.copy_(mu.float() + folded[id(bn)])
        ref = model(x[:4].numpy())
        got = net(x[:4]).numpy()
    net.train(was_training)
    err = float(np.abs(got - ref).max() / max(float(np.abs(ref).max()), 1e-6))
    if not err <= rtol:
        raise MltemError(f"the network with the ONNX weights differs from the ONNX model by {err:.2g} (relative)", path=onnx_path)


def load_checkpoint(path) -> dict:
    """Read an mltem checkpoint safely (``weights_only=True``).

    Raises
    ------
    MltemError
        Missing, corrupt or foreign files.
    """
    torch = require("torch", feature="loading checkpoints")
    path = Path(path)
    if not path.is_file():
        raise MltemError("no such checkpoint", path=path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise MltemError(f"not a readable mltem checkpoint ({str(exc).splitlines()[0][:160]})", path=path) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise MltemError(f"not an mltem checkpoint (expected format {CHECKPOINT_FORMAT})", path=path)
    return ckpt


def build_from_checkpoint(ckpt: dict):
    """The network of a checkpoint with its weights, in eval mode."""
    from mltem.nets import create_net

    kwargs = dict(ckpt["net"])
    net = create_net(kwargs.pop("name"), **kwargs)
    net.load_state_dict(ckpt["state_dict"])
    return net.eval()


def export_checkpoint(path, folder, *, name: str | None = None, atol: float = 1e-4):
    """Export a checkpoint to ``folder/<name>.onnx`` plus its model card.

    Parameters
    ----------
    path : path
        ``model.ckpt`` written by :func:`train`.
    folder : path
        Destination (e.g. ``models/``).
    name : str, optional
        Registry name; defaults to the config's ``export.name`` or ``<task>``.
    atol : float
        Largest allowed torch vs onnxruntime difference.

    Returns
    -------
    ModelCard
    """
    from mltem.export import export_onnx

    ckpt = load_checkpoint(path)
    cfg = TrainConfig.from_dict(ckpt["config"], source=str(path))
    task = get_task(cfg.task)
    net = build_from_checkpoint(ckpt)
    real = ckpt["parity_inputs"].numpy()
    name = name or cfg.export.get("name") or cfg.task
    info = task.export_info(cfg)
    recipe = {
        "config": cfg.to_dict(),
        "n_train": ckpt.get("n_train"),
        "n_val": ckpt.get("n_val"),
        "steps": ckpt.get("global_step"),
        "train_time_s": round(float(ckpt.get("timings_s", {}).get("fit", 0.0)), 2),
    }
    metrics = {f"val_{k[4:]}" if k.startswith("val_") else k: v for k, v in ckpt["metrics"].items()}
    return export_onnx(
        net,
        real[:1],
        folder,
        name=name,
        task=cfg.task,
        dynamic_spatial=bool(info.pop("dynamic_spatial", False)),
        recipe=recipe,
        metrics=metrics,
        real_inputs=[real],
        atol=atol,
        **info,
    )
