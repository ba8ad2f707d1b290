"""A tiny segmentation task for testing the training spine: find bright disks."""
from __future__ import annotations

import numpy as np

from mltem.training import Task


def disks(n: int, size: int = 32, *, seed: int = 0):
    """Images with 1-3 bright disks on a noisy background and their exact masks."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    x = np.empty((n, 1, size, size), np.float32)
    y = np.zeros((n, size, size), np.int64)
    for i in range(n):
        m = np.zeros((size, size), bool)
        for _ in range(rng.integers(1, 4)):
            cy, cx, r = rng.uniform(6, size - 6, 2).tolist() + [rng.uniform(3, 6)]
            m |= (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
        x[i, 0] = m * 1.0 + rng.normal(0, 0.3, (size, size))
        y[i] = m
    return x, y


class DiskTask(Task):
    name = "toy-disks"
    loss = "cross_entropy"
    default_net = {"name": "unet", "in_channels": 1, "out_channels": 2, "base": 4, "depth": 2}
    classes = ("background", "disk")

    def make_data(self, cfg):
        return disks(cfg.data.get("n", 64), cfg.data.get("size", 32), seed=cfg.seed)

    def transform(self, cfg):
        if not cfg.augment.get("flips"):
            return None
        import albumentations as A

        return A.Compose([A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5), A.RandomRotate90(p=0.5)])

    def export_info(self, cfg):
        return {"classes": list(self.classes), "dynamic_spatial": True, "normalisation": "none (unit-contrast test data)"}


def peaks(n: int, length: int = 64, *, seed: int = 0):
    """Spectra with one Gaussian peak in the left (class 0) or right (class 1) half."""
    rng = np.random.default_rng(seed)
    e = np.arange(length)
    y = rng.integers(0, 2, n)
    centre = np.where(y == 0, rng.uniform(8, 24, n), rng.uniform(40, 56, n))
    x = np.exp(-((e[None] - centre[:, None]) ** 2) / 8.0) + rng.normal(0, 0.1, (n, length))
    return x[:, None].astype(np.float32), y.astype(np.int64)


class PeakTask(Task):
    """One class label per sample (not per pixel)."""

    name = "toy-peaks"
    loss = "cross_entropy"
    default_net = {"name": "spectrum", "length": 64, "out_features": 2, "channels": [8, 16], "hidden": 16}
    classes = ("left", "right")

    def make_data(self, cfg):
        return peaks(cfg.data.get("n", 96), seed=cfg.seed)
