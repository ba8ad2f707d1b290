"""Export of trained networks to ONNX with model cards (needs ``mltem[train]``)."""
from mltem.export._onnx import export_onnx, parity_check

__all__ = ["export_onnx", "parity_check"]
