"""The training spine: configs, the Lightning module/data module, the task registry,
training runs and export of checkpoints. Needs ``mltem[train]``; importing this package
imports only the light parts (configs and the task registry)."""
from mltem.training._config import TrainConfig, load_config
from mltem.training._tasks import TASKS, Task, get_task, register_task

__all__ = ["TASKS", "Task", "TrainConfig", "export_checkpoint", "get_task", "load_checkpoint", "load_config", "register_task", "train"]


def train(cfg, out_dir, **kwargs):
    """Train a config; see :func:`mltem.training._run.train`."""
    from mltem.training._run import train as _train

    return _train(cfg, out_dir, **kwargs)


def load_checkpoint(path):
    """Read an mltem checkpoint; see :func:`mltem.training._run.load_checkpoint`."""
    from mltem.training._run import load_checkpoint as _load

    return _load(path)


def export_checkpoint(path, folder, **kwargs):
    """Export a checkpoint to ONNX; see :func:`mltem.training._run.export_checkpoint`."""
    from mltem.training._run import export_checkpoint as _export

    return _export(path, folder, **kwargs)
