"""Model cards and the model registry.

Every ONNX model in ``models/`` has a card ``<name>.json`` beside it: task, inputs
(shapes, normalisation), outputs, class names, training recipe, metrics and the file's
sha256. The registry finds models in the user directory named by ``MLTEM_MODELS_DIR``
(first) and in the project's ``models/`` folder, and refuses a file whose sha256 does not
match its card.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from mltem._errors import MltemError

__all__ = [
    "ModelCard",
    "sha256_file",
    "model_dirs",
    "list_models",
    "find_model",
    "read_card",
    "verify",
    "MODELS_ENV",
]

MODELS_ENV = "MLTEM_MODELS_DIR"
CARD_SCHEMA = 1


@dataclass
class ModelCard:
    """What a shipped model is, how to feed it and how well it does.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"segment-unet"``; the files are ``<name>.onnx`` and
        ``<name>.json``.
    task : str
        The mltem task it serves (``segment``, ``index``, ``valence``, ``fronts``).
    file : str
        ONNX file name, relative to the card's folder.
    sha256 : str
        Hex digest of the ONNX file.
    inputs, outputs : list of dict
        One dict per tensor: ``name``, ``shape`` (``"batch"`` or null for dynamic
        axes), ``dtype`` and, for inputs, ``normalisation`` (how raw data is scaled).
    classes : list of str
        Class names in output-channel order, if any.
    recipe : dict
        How it was trained: config, data recipe, seed, epochs, time.
    metrics : dict
        Measured figures (validation accuracy, IoU, parity error, speed).
    opset : int
    mltem_version : str
    created_utc : str
    extra : dict
        Anything task-specific (e.g. the energy grid of a spectrum model).
    """

    name: str
    task: str
    file: str
    sha256: str = ""
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    classes: list = field(default_factory=list)
    recipe: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    opset: int = 17
    mltem_version: str = ""
    created_utc: str = ""
    extra: dict = field(default_factory=dict)
    schema: int = CARD_SCHEMA
    # Where the card was read from (not stored in the JSON).
    folder: Path | None = field(default=None, compare=False, repr=False)

    @property
    def path(self) -> Path:
        """Path of the ONNX file."""
        return (self.folder or Path(".")) / self.file

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("folder")
        return d

    def write(self, path) -> Path:
        """Write the card as JSON (atomically)."""
        from mltem.io import atomic_write

        path = Path(path)
        with atomic_write(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path


def sha256_file(path, *, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def model_dirs() -> list[Path]:
    """Folders searched for models, in order: ``$MLTEM_MODELS_DIR``, the project's
    ``models/`` (source checkout or editable install), then ``<prefix>/share/mltem/models``
    (where a wheel installs the shipped models)."""
    import sys

    dirs = []
    env = os.environ.get(MODELS_ENV)
    if env:
        dirs += [Path(p) for p in env.split(os.pathsep) if p]
    here = Path(__file__).resolve().parent.parent  # mltem/
    for cand in (here.parent / "models", Path(sys.prefix) / "share" / "mltem" / "models"):
        if cand.is_dir() and cand not in dirs:
            dirs.append(cand)
    return dirs


def read_card(path) -> ModelCard:
    """Read a model card JSON file.

    Raises
    ------
    MltemError
        If the file is not a valid card.
    """
    path = Path(path)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise MltemError(f"cannot read the model card ({exc})", path=path) from exc
    if not isinstance(d, dict) or not {"name", "task", "file", "sha256"} <= set(d):
        raise MltemError("not a model card: needs name, task, file and sha256", path=path)
    known = {f.name for f in dataclasses.fields(ModelCard)} - {"folder"}
    card = ModelCard(**{k: v for k, v in d.items() if k in known})
    card.folder = path.parent
    return card


def list_models() -> list[ModelCard]:
    """All model cards found in :func:`model_dirs` (earlier folders shadow later ones)."""
    seen: dict[str, ModelCard] = {}
    for d in model_dirs():
        for p in sorted(d.glob("*.json")):
            try:
                card = read_card(p)
            except MltemError:
                continue
            seen.setdefault(card.name, card)
    return list(seen.values())


def verify(card: ModelCard) -> ModelCard:
    """Check that the card's file exists and hashes to the card's sha256.

    Raises
    ------
    MltemError
        Missing file, or a file that was modified or corrupted.
    """
    p = card.path
    if not p.is_file():
        raise MltemError(f"model '{card.name}' has a card but its file is missing", path=p)
    got = sha256_file(p)
    if got != card.sha256:
        raise MltemError(
            f"model '{card.name}' does not match the sha256 in its card "
            f"(card {card.sha256[:12]}..., file {got[:12]}...): the file was modified or is "
            "corrupt; restore it or re-export the model",
            path=p,
        )
    return card


def find_model(name_or_path, *, task: str | None = None) -> ModelCard:
    """Find a model by registry name, card path or ONNX path, and verify it.

    Parameters
    ----------
    name_or_path : str or os.PathLike
        A registry name (``"segment-unet"``), a card (``.json``) or an ONNX file with
        its card beside it.
    task : str, optional
        Require the model to serve this task.

    Returns
    -------
    ModelCard
        The verified card; ``card.path`` is the ONNX file.
    """
    s = os.fspath(name_or_path)
    p = Path(s)
    if p.suffix in (".json", ".onnx") or os.sep in s:
        card_path = p.with_suffix(".json")
        if not card_path.is_file():
            raise MltemError("no model card (.json) beside the model; models must have one", path=p)
        card = read_card(card_path)
    else:
        cards = {c.name: c for c in list_models()}
        if s not in cards:
            avail = ", ".join(sorted(cards)) or "none"
            raise MltemError(
                f"no model named '{s}' in {', '.join(map(str, model_dirs())) or 'any models folder'} "
                f"(available: {avail}); set {MODELS_ENV} to add a folder"
            )
        card = cards[s]
    if task is not None and card.task != task:
        raise MltemError(f"model '{card.name}' is for task '{card.task}', not '{task}'")
    return verify(card)
