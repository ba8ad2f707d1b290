"""Inference and file commands work without torch, lightning or albumentations."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BLOCK = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'torch', 'lightning', 'albumentations', 'pytorch_lightning', 'onnx'}:
            raise ImportError('blocked for this test: ' + name)
sys.meta_path.insert(0, _Block())
"""


def test_inference_path_needs_no_torch(tmp_path):
    torch = pytest.importorskip("torch")
    from mltem.export import export_onnx

    card = export_onnx(torch.nn.Conv2d(1, 2, 1), np.zeros((1, 1, 8, 8), np.float32), tmp_path, name="pw", task="test", dynamic_spatial=True)
    example = Path(__file__).parents[1] / "datasets" / "examples" / "lattice_hrtem.dm4"
    code = BLOCK + f"""
import numpy as np
from mltem.cli import main
from mltem.infer import OnnxModel
assert main(['info', {str(example)!r}]) == 0
m = OnnxModel({str(card.path)!r})
out = m.predict_tiled(np.ones((1, 1, 40, 40), np.float32), tile=16, overlap=4)
assert out.shape == (1, 2, 40, 40), out.shape
from mltem.training import load_config  # light part of the spine imports fine
from mltem import MltemError
try:
    from mltem.nets import create_net
    create_net('unet')
except MltemError as e:
    assert "pip install 'mltem[train]'" in str(e), e
else:
    raise SystemExit('torch was importable')
print('ok')
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.strip().endswith("ok")
