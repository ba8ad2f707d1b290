"""Progress bars for long work (tqdm on stderr; off with --quiet or MLTEM_PROGRESS=0)."""
from __future__ import annotations

import os

__all__ = ["progress", "set_progress"]

_enabled: bool | None = None


def set_progress(enabled: bool) -> None:
    """Switch progress bars on or off for this process."""
    global _enabled
    _enabled = bool(enabled)


def _on() -> bool:
    if _enabled is not None:
        return _enabled
    return os.environ.get("MLTEM_PROGRESS", "1") not in ("0", "false", "no")


def progress(iterable=None, *, total: int | None = None, desc: str = "", unit: str = "it"):
    """Wrap ``iterable`` in a progress bar (or return a manual bar if it is None)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=not _on(), leave=False, dynamic_ncols=True)
