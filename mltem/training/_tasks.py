"""The task registry: what each task trains on and how its model is exported.

A task is a class with four methods (see :class:`Task`). Tasks register by name with a
dotted path, imported only when used, so the registry costs nothing at start-up.
"""
from __future__ import annotations

import importlib

from mltem._errors import MltemError

__all__ = ["Task", "TASKS", "register_task", "get_task"]


class Task:
    """Base class of a trainable task.

    Subclasses set ``name``, ``loss`` and ``default_net`` and implement
    :meth:`make_data`; they may override :meth:`transform` (augmentation) and
    :meth:`export_info` (what goes into the model card).
    """

    name: str = ""
    loss: str = "cross_entropy"
    default_net: dict = {}
    classes: tuple = ()

    def make_data(self, cfg):
        """Return ``(x, y)`` numpy arrays for the config's data recipe."""
        raise NotImplementedError

    def transform(self, cfg):
        """Training-time augmentation (an albumentations ``Compose``) or None."""
        return None

    def loss_for(self, cfg) -> str:
        """Key of the training loss in the spine's loss registry for this config (default
        :attr:`loss`; a task whose config chooses its loss overrides this)."""
        return self.loss

    def export_info(self, cfg) -> dict:
        """Keyword arguments for :func:`mltem.export.export_onnx` (normalisation, classes, extra)."""
        return {"classes": list(self.classes)}

    #: Task-specific options of ``mltem train`` this task accepts (e.g. ``("phase",)``).
    options: tuple = ()

    def apply_options(self, cfg, **options) -> None:
        """Apply task-specific ``mltem train`` options (``--phase``, ``--element``, ...) to
        ``cfg`` in place. Subclasses that list names in :attr:`options` override this."""
        given = sorted(k for k, v in options.items() if v)
        if given:
            flags = ", ".join("--" + k.replace("_", "-") for k in given)
            raise MltemError(f"{flags} does not apply to the '{self.name or cfg.task}' task")


# name -> "module:Class"; capability modules add their tasks here.
TASKS: dict[str, str | type] = {
    "fronts": "mltem.fronts._task:FrontsTask",
    "valence": "mltem.eels._task:ValenceTask",
    "segment": "mltem.segment._task:SegmentTask",
    "index": "mltem.diffraction._task:IndexTask",
}


def register_task(name: str, task) -> None:
    """Register a task class (or a "module:Class" path) under ``name``."""
    TASKS[name] = task


def get_task(name: str) -> Task:
    """Instantiate the task registered under ``name``.

    Raises
    ------
    MltemError
        If no task has that name.
    """
    if name not in TASKS:
        avail = ", ".join(sorted(TASKS)) or "none yet"
        raise MltemError(f"no trainable task named '{name}'; available: {avail}")
    target = TASKS[name]
    if isinstance(target, str):
        mod, _, cls = target.partition(":")
        target = getattr(importlib.import_module(mod), cls)
    return target()
