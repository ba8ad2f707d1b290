"""A short human-readable description of a file's contents (``mltem info``)."""
from __future__ import annotations

import numpy as np

from mltem.io._load import signal_kind

__all__ = ["describe"]


def describe(signal) -> dict:
    """Shape, axes, calibration, signal type and size of a signal, as a dict.

    Parameters
    ----------
    signal : hyperspy.signal.BaseSignal

    Returns
    -------
    dict
        ``file``, ``title``, ``kind`` (image/diffraction/spectrum), ``signal_type``,
        ``shape`` (numpy order), ``dtype``, ``size_mb``, ``lazy`` and ``axes`` (in
        hyperspy order: navigation then signal, each with name, size, scale, offset,
        units and whether it is navigation).
    """
    am = signal.axes_manager
    axes = []
    for ax in list(am.navigation_axes) + list(am.signal_axes):
        axes.append(
            {
                "name": str(ax.name),
                "size": int(ax.size),
                "scale": float(getattr(ax, "scale", np.nan)),
                "offset": float(getattr(ax, "offset", np.nan)),
                "units": ax.units if isinstance(ax.units, str) else "",
                "navigate": bool(ax.navigate),
            }
        )
    data = signal.data
    itemsize = np.dtype(data.dtype).itemsize
    return {
        "file": signal.metadata.get_item("General.original_filename") or "",
        "title": signal.metadata.get_item("General.title") or "",
        "kind": signal_kind(signal),
        "signal_type": signal.metadata.get_item("Signal.signal_type") or "",
        "shape": [int(n) for n in data.shape],
        "dtype": str(data.dtype),
        "size_mb": round(int(np.prod(data.shape)) * itemsize / 1e6, 3),
        "lazy": bool(getattr(signal, "_lazy", False)),
        "axes": axes,
    }


def format_description(d: dict) -> str:
    """Render :func:`describe`'s dict as aligned text."""
    lines = [
        f"file:        {d['file']}",
        f"title:       {d['title']}",
        f"kind:        {d['kind']}" + (f" (signal_type {d['signal_type']})" if d["signal_type"] else ""),
        f"shape:       {tuple(d['shape'])}  dtype {d['dtype']}  {d['size_mb']:.3f} MB" + ("  (lazy)" if d["lazy"] else ""),
        "axes:",
        f"  {'role':<10} {'name':<16} {'size':>6} {'scale':>12} {'offset':>12}  units",
    ]
    for a in d["axes"]:
        role = "navigation" if a["navigate"] else "signal"
        lines.append(
            f"  {role:<10} {a['name'][:16]:<16} {a['size']:>6} {a['scale']:>12.6g} {a['offset']:>12.6g}  {a['units'] or '-'}"
        )
    return "\n".join(lines)
