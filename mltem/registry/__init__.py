"""Model cards and the model registry (sha256-verified ONNX models)."""
from mltem.registry._cards import (
    MODELS_ENV,
    ModelCard,
    find_model,
    list_models,
    model_dirs,
    read_card,
    sha256_file,
    verify,
)

__all__ = ["MODELS_ENV", "ModelCard", "find_model", "list_models", "model_dirs", "read_card", "sha256_file", "verify"]
