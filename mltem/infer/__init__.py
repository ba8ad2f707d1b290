"""ONNX inference with onnxruntime: cached sessions, batching, overlap tiling."""
from mltem.infer._session import OnnxModel, blend_window, default_threads, session, tile_starts

__all__ = ["OnnxModel", "blend_window", "default_threads", "session", "tile_starts"]
