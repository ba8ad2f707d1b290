"""Torch module -> single-file ONNX model + model card, with a parity check.

The legacy TorchScript exporter is used (``dynamo=False``): it writes one
self-contained file and needs no ``onnxscript``; torch 2.13 still ships it.
"""
from __future__ import annotations

import datetime as _dt
import logging
import warnings
from pathlib import Path

import numpy as np

from mltem._errors import MltemError, require
from mltem.registry import ModelCard, sha256_file

__all__ = ["export_onnx", "parity_check"]

log = logging.getLogger(__name__)


def parity_check(module, onnx_path, inputs, *, input_name: str = "input") -> float:
    """Largest absolute difference between torch and onnxruntime outputs.

    Parameters
    ----------
    module : torch.nn.Module
        The module in eval mode.
    onnx_path : path
        Exported model.
    inputs : list of numpy.ndarray
        Batches to compare on (float32, the model's input layout).

    Returns
    -------
    float
        max |torch - onnxruntime| over all inputs and outputs.
    """
    torch = require("torch", feature="ONNX export")
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    worst = 0.0
    with torch.no_grad():
        for x in inputs:
            x = np.ascontiguousarray(x, dtype=np.float32)
            ref = module(torch.from_numpy(x))
            ref = [ref] if isinstance(ref, torch.Tensor) else list(ref)
            got = sess.run(None, {input_name: x})
            if len(got) != len(ref):
                raise MltemError(f"ONNX model has {len(got)} outputs, torch module {len(ref)}")
            for r, g in zip(ref, got):
                r = r.numpy()
                if r.shape != g.shape:
                    raise MltemError(f"ONNX output shape {g.shape} differs from torch {r.shape}")
                worst = max(worst, float(np.max(np.abs(r - g))) if r.size else 0.0)
    return worst


def export_onnx(
    module,
    example: np.ndarray,
    folder,
    *,
    name: str,
    task: str,
    output_names=("output",),
    dynamic_spatial: bool = False,
    normalisation: str = "",
    outputs_meta=None,
    classes=(),
    recipe=None,
    metrics=None,
    extra=None,
    real_inputs=(),
    atol: float = 1e-4,
    opset: int = 17,
) -> ModelCard:
    """Export ``module`` to ``folder/<name>.onnx`` with its card ``<name>.json``.

    The batch axis is dynamic (and, with ``dynamic_spatial``, the last two axes too).
    After export the model is checked with ``onnx.checker`` and run with onnxruntime on
    a random batch of three and on ``real_inputs``; if any output differs from torch by
    more than ``atol`` the files are not written.

    Parameters
    ----------
    module : torch.nn.Module
    example : numpy.ndarray
        One input batch, float32, e.g. (1, C, H, W) or (1, C, L).
    folder : path
        Where the model and card go (created).
    name, task : str
        Registry name and task of the model.
    output_names : sequence of str
    dynamic_spatial : bool
        Let the trailing spatial axes vary (fully convolutional networks).
    normalisation : str
        How raw data must be scaled before it is fed (recorded in the card).
    outputs_meta : list of dict, optional
        Per-output description for the card (defaults to name and shape).
    classes : sequence of str
    recipe, metrics, extra : dict, optional
        Training recipe, measured figures and task-specific data for the card.
    real_inputs : sequence of numpy.ndarray
        Real (not random) batches for the parity check.
    atol : float
        Largest allowed |torch - onnxruntime| (fp32 agrees to ~1e-5 in practice).
    opset : int
        ONNX opset, >= 17.

    Returns
    -------
    ModelCard
        The card written beside the model, with ``metrics['onnx_parity_max_abs']``.
    """
    torch = require("torch", feature="ONNX export")
    onnx = require("onnx", feature="ONNX export")
    from mltem import __version__
    from mltem.io import atomic_write

    if opset < 17:
        raise ValueError(f"opset must be >= 17, got {opset}")
    example = np.ascontiguousarray(example, dtype=np.float32)
    if example.ndim < 2:
        raise ValueError(f"example must have a batch axis, got shape {example.shape}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    spatial = list(range(2, example.ndim)) if dynamic_spatial else []
    axis_names = {0: "batch", **{a: f"dim{a}" for a in spatial}}
    dyn = {"input": axis_names, **{o: dict(axis_names) for o in output_names}}
    onnx_path = folder / f"{name}.onnx"
    with atomic_write(onnx_path) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                (torch.from_numpy(example),),
                str(tmp),
                dynamo=False,
                opset_version=opset,
                input_names=["input"],
                output_names=list(output_names),
                dynamic_axes=dyn,
                do_constant_folding=True,
            )
        graph = onnx.load(str(tmp))
        onnx.checker.check_model(graph)
        sess_outputs = _output_shapes(graph)
        rng = np.random.default_rng(0)
        rand = rng.standard_normal((3, *example.shape[1:])).astype(np.float32)
        err = parity_check(module, tmp, [example, rand, *real_inputs])
        if not err <= atol:
            raise MltemError(f"ONNX export of '{name}' differs from torch by {err:.3g} > {atol:g}; not written")
    card = ModelCard(
        name=name,
        task=task,
        file=onnx_path.name,
        sha256=sha256_file(onnx_path),
        inputs=[{"name": "input", "shape": _shape_doc(example.shape, spatial), "dtype": "float32", "normalisation": normalisation}],
        outputs=outputs_meta or [{"name": n, "shape": s} for n, s in zip(output_names, sess_outputs)],
        classes=list(classes),
        recipe=dict(recipe or {}),
        metrics={**dict(metrics or {}), "onnx_parity_max_abs": err},
        opset=opset,
        mltem_version=__version__,
        created_utc=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        extra=dict(extra or {}),
        folder=folder,
    )
    card.write(folder / f"{name}.json")
    log.info("exported %s (%.1f kB, parity %.2g)", onnx_path, onnx_path.stat().st_size / 1e3, err)
    return card


def _shape_doc(shape, spatial):
    return ["batch"] + [None if i in spatial else int(n) for i, n in enumerate(shape) if i > 0]


def _output_shapes(graph):
    """Output shapes of an ONNX model; dynamic axes are None."""
    return [
        [d.dim_value if d.HasField("dim_value") else None for d in o.type.tensor_type.shape.dim]
        for o in graph.graph.output
    ]
