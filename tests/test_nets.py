"""Shared tests every network architecture inherits (shapes, backward, odd sizes,
save/load, ONNX parity)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mltem.nets import create_net  # noqa: E402


class BaseNetTester:
    name = ""
    kwargs: dict = {}
    input_shape: tuple = ()
    output_shape: tuple = ()

    def make(self):
        torch.manual_seed(0)
        return create_net(self.name, **self.kwargs)

    def test_forward_shape_and_dtype(self):
        out = self.make()(torch.zeros(self.input_shape))
        assert tuple(out.shape) == self.output_shape and out.dtype == torch.float32

    def test_backward_reaches_every_parameter(self):
        net = self.make()
        net(torch.randn(self.input_shape)).square().mean().backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())

    def test_save_load(self, tmp_path):
        net = self.make().eval()
        torch.save(net.state_dict(), tmp_path / "w.pt")
        other = create_net(self.name, **self.kwargs).eval()
        other.load_state_dict(torch.load(tmp_path / "w.pt", weights_only=True))
        x = torch.randn(self.input_shape)
        torch.testing.assert_close(net(x), other(x))

    def test_onnx_parity(self, tmp_path):
        from mltem.export import export_onnx

        net = self.make().eval()
        x = np.random.default_rng(0).standard_normal(self.input_shape).astype(np.float32)
        card = export_onnx(net, x[:1], tmp_path, name=self.name, task="test", real_inputs=[x])
        assert card.metrics["onnx_parity_max_abs"] <= 1e-4


class TestUNet(BaseNetTester):
    name = "unet"
    kwargs = {"in_channels": 3, "out_channels": 5, "base": 4, "depth": 3}
    input_shape = (2, 3, 48, 64)
    output_shape = (2, 5, 48, 64)

    def test_odd_size_error_suggests_padding(self):
        with pytest.raises(ValueError, match="divisible by 8, got 50x64; pad to 56x64"):
            self.make()(torch.zeros(1, 3, 50, 64))

    def test_bad_arguments(self):
        with pytest.raises(ValueError, match="depth and base must be >= 1"):
            create_net("unet", depth=0)


class TestSpectrumNet(BaseNetTester):
    name = "spectrum"
    kwargs = {"length": 128, "out_features": 4}
    input_shape = (3, 1, 128)
    output_shape = (3, 4)
