"""onnxruntime inference: tiling geometry, seamless blending, batching."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from mltem.infer import OnnxModel, blend_window, tile_starts

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("length, tile, overlap", [(100, 32, 8), (64, 64, 16), (20, 32, 8), (257, 64, 0)])
def test_tile_starts_cover_everything(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    covered = np.zeros(max(length, tile), bool)
    for s in starts:
        covered[s : s + tile] = True
        assert s >= 0 and (s + tile <= length or length <= tile)
    assert covered[:length].all()
    gaps = np.diff(starts)
    assert (gaps <= tile - overlap).all()


def test_tile_starts_rejects_overlap_larger_than_tile():
    with pytest.raises(ValueError, match="must be larger than overlap"):
        tile_starts(100, 16, 16)


def test_blend_window_is_positive_and_symmetric():
    w = blend_window(32, 8)
    assert w.min() > 0 and w.max() == 1
    assert_allclose(w, w[::-1, ::-1])


def _export(module, tmp_path, name, shape):
    from mltem.export import export_onnx

    return export_onnx(module, np.zeros(shape, np.float32), tmp_path, name=name, task="test", dynamic_spatial=True)


def test_tiled_equals_whole_frame_for_pointwise_model(tmp_path):
    """A 1x1 convolution sees one pixel: tiling must reproduce the whole-frame result."""
    torch.manual_seed(0)
    net = torch.nn.Conv2d(2, 3, 1)
    card = _export(net, tmp_path, "pointwise", (1, 2, 32, 32))
    m = OnnxModel(card)
    x = np.random.default_rng(0).standard_normal((2, 2, 100, 75)).astype(np.float32)
    whole = m(x)
    tiled = m.predict_tiled(x, tile=32, overlap=8, batch_size=5)
    assert tiled.shape == (2, 3, 100, 75)
    assert_allclose(tiled, whole, atol=1e-5)


def test_tiling_hides_border_effects_of_a_3x3_model(tmp_path):
    """With a 3x3 kernel only the outer pixel of each tile is wrong; blending with an
    8-pixel overlap shrinks that error far below the no-overlap error."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Tanh(), torch.nn.Conv2d(4, 1, 3, padding=1))
    card = _export(net, tmp_path, "conv3", (1, 1, 32, 32))
    m = OnnxModel(card)
    x = np.random.default_rng(1).standard_normal((1, 1, 96, 96)).astype(np.float32)
    whole = m(x)
    err_blend = np.abs(m.predict_tiled(x, tile=32, overlap=16) - whole).max()
    err_plain = np.abs(m.predict_tiled(x, tile=32, overlap=0) - whole).max()
    assert err_blend < 0.35 * err_plain


def test_small_images_are_padded(tmp_path):
    net = torch.nn.Conv2d(1, 1, 1)
    m = OnnxModel(_export(net, tmp_path, "pw", (1, 1, 16, 16)))
    x = np.random.default_rng(2).standard_normal((1, 1, 20, 24)).astype(np.float32)
    assert_allclose(m.predict_tiled(x, tile=32, overlap=4), m(x), atol=1e-5)


def test_wrong_rank_is_explained(tmp_path):
    from mltem import MltemError

    net = torch.nn.Conv2d(1, 1, 1)
    m = OnnxModel(_export(net, tmp_path, "pw2", (1, 1, 16, 16)))
    with pytest.raises(MltemError, match="takes input of rank 4"):
        m(np.zeros((16, 16), np.float32))
    with pytest.raises(ValueError, match=r"images must be \(N, C, H, W\)"):
        m.predict_tiled(np.zeros((16, 16), np.float32))


def test_export_refuses_a_model_that_disagrees(tmp_path, monkeypatch):
    """If onnxruntime's output differs from torch's the files are not written."""
    from mltem import MltemError
    from mltem.export import _onnx

    monkeypatch.setattr(_onnx, "parity_check", lambda *a, **k: 0.5)
    with pytest.raises(MltemError, match="differs from torch by 0.5"):
        _export(torch.nn.Conv2d(1, 1, 1), tmp_path, "bad", (1, 1, 8, 8))
    assert not list(tmp_path.glob("bad*"))


def test_card_chooses_the_graph_optimisation_level(tmp_path):
    import dataclasses

    from mltem import MltemError

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 5, 3, padding=1), torch.nn.ReLU(), torch.nn.ConvTranspose2d(5, 3, 2, 2))
    card = _export(net, tmp_path, "levels", (1, 2, 16, 16))
    x = np.random.default_rng(0).standard_normal((2, 2, 24, 16)).astype(np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    for level in ("basic", "extended", "all"):
        c = dataclasses.replace(card, extra={**card.extra, "onnxruntime_graph_optimization": level})
        assert_allclose(OnnxModel(c)(x), ref, atol=1e-5)
    bad = dataclasses.replace(card, extra={**card.extra, "onnxruntime_graph_optimization": "fastest"})
    with pytest.raises(MltemError, match="must be one of basic, extended, all, got 'fastest'"):
        OnnxModel(bad)
