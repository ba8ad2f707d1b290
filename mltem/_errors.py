"""Errors that reach the user as one line (the CLI prints them and exits with status 2)."""
from __future__ import annotations

import os

__all__ = ["MltemError", "require"]


class MltemError(Exception):
    """A problem with the user's input or request, explained in one line.

    Parameters
    ----------
    message : str
        What is wrong and, where possible, how to fix it.
    path : str or os.PathLike, optional
        The file the problem concerns; it is prefixed to the message.
    """

    def __init__(self, message: str, *, path: str | os.PathLike | None = None):
        self.path = None if path is None else os.fspath(path)
        self.message = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


def require(module: str, *, extra: str = "train", feature: str = ""):
    """Import an optional dependency or raise an error with the install hint.

    Parameters
    ----------
    module : str
        Importable module name, e.g. ``"torch"``.
    extra : str
        The ``mltem`` extra that provides it.
    feature : str
        What needs it, for the message.

    Returns
    -------
    module
        The imported module.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        what = f"{feature} needs" if feature else "this needs"
        raise MltemError(
            f"{what} the package '{module}', which is not installed; "
            f"install it with: pip install 'mltem[{extra}]'"
        ) from exc
