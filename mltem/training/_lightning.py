"""The Lightning module and data module every task reuses."""
from __future__ import annotations

import numpy as np
import lightning as L
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from mltem._errors import MltemError
from mltem.nets import create_net

__all__ = ["ArrayDataset", "ArrayDataModule", "TaskModule", "LOSSES"]


def _soft_cross_entropy(logits, target):
    """Cross entropy against class fractions (mixed valence): target rows sum to 1."""
    return -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


LOSSES = {
    "cross_entropy": lambda logits, y: F.cross_entropy(logits, y.long()),
    "soft_cross_entropy": _soft_cross_entropy,
    "mse": lambda pred, y: F.mse_loss(pred, y.float()),
    "bce": lambda logits, y: F.binary_cross_entropy_with_logits(logits, y.float()),
}


class ArrayDataset(Dataset):
    """Pairs of numpy arrays, with an optional albumentations transform.

    Parameters
    ----------
    x : numpy.ndarray
        Inputs, (N, C, ...) float32.
    y : numpy.ndarray
        Targets: (N, H, W) class masks, (N,) labels or (N, K) values/fractions.
    transform : albumentations.Compose, optional
        Applied to (image, mask) pairs of 2D samples: image (H, W, C), mask (H, W).
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, transform=None):
        if len(x) != len(y):
            raise ValueError(f"x and y have different lengths: {len(x)} != {len(y)}")
        self.x, self.y, self.transform = x, y, transform

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        x, y = self.x[i], self.y[i]
        if self.transform is not None:
            if y.ndim == 2:
                r = self.transform(image=np.moveaxis(x, 0, -1), mask=y)
                x, y = np.moveaxis(r["image"], -1, 0), r["mask"]
            else:
                x = np.moveaxis(self.transform(image=np.moveaxis(x, 0, -1))["image"], -1, 0)
        # np.asarray keeps a per-sample class label 0-d (ascontiguousarray would make it (1,))
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.as_tensor(np.asarray(y))


class ArrayDataModule(L.LightningDataModule):
    """Train/validation split of in-memory arrays, seeded.

    Parameters
    ----------
    x, y : numpy.ndarray
        All samples; a seeded permutation holds out ``val_fraction`` for validation.
    batch_size : int
    val_fraction : float
    seed : int
    transform : albumentations.Compose, optional
        Training-time augmentation (validation data are not augmented).
    num_workers : int
    """

    def __init__(self, x, y, *, batch_size: int = 16, val_fraction: float = 0.2, seed: int = 0, transform=None, num_workers: int = 0):
        super().__init__()
        n = len(x)
        n_val = max(1, int(round(n * val_fraction)))
        if n - n_val < 1:
            raise MltemError(f"need at least 2 samples to train and validate, got {n}")
        order = np.random.default_rng(seed).permutation(n)
        tr, va = order[n_val:], order[:n_val]
        if transform is not None and hasattr(transform, "set_random_seed"):
            transform.set_random_seed(seed)  # albumentations keeps its own generator
        self.train_set = ArrayDataset(x[tr], y[tr], transform)
        self.val_set = ArrayDataset(x[va], y[va])
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers

    def train_dataloader(self):
        g = torch.Generator().manual_seed(self.seed)
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True, generator=g, num_workers=self.num_workers)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=self.batch_size, shuffle=False, num_workers=self.num_workers)


class TaskModule(L.LightningModule):
    """A network, a loss and AdamW; logs loss and accuracy for classification.

    Parameters
    ----------
    net : dict
        ``{"name": ..., **kwargs}`` for :func:`mltem.nets.create_net`.
    loss : str
        Key of :data:`LOSSES`.
    lr, weight_decay : float
        AdamW settings.
    max_epochs : int
        For the cosine learning-rate schedule.
    """

    def __init__(self, net: dict, loss: str = "cross_entropy", lr: float = 1e-3, weight_decay: float = 1e-4, max_epochs: int = 10):
        super().__init__()
        self.save_hyperparameters()
        if loss not in LOSSES:
            raise MltemError(f"unknown loss '{loss}'; available: {', '.join(LOSSES)}")
        kwargs = dict(net)
        self.net = create_net(kwargs.pop("name"), **kwargs)
        self.loss_fn = LOSSES[loss]

    def forward(self, x):
        return self.net(x)

    def _step(self, batch, stage: str):
        x, y = batch
        out = self(x)
        loss = self.loss_fn(out, y)
        self.log(f"{stage}_loss", loss, prog_bar=True, on_epoch=True, on_step=False, batch_size=len(x))
        if self.hparams.loss == "cross_entropy":
            acc = (out.argmax(1) == y.long()).float().mean()
            self.log(f"{stage}_acc", acc, prog_bar=True, on_epoch=True, on_step=False, batch_size=len(x))
        elif self.hparams.loss == "soft_cross_entropy":
            mae = (F.softmax(out, 1) - y).abs().mean()
            self.log(f"{stage}_fraction_mae", mae, on_epoch=True, on_step=False, batch_size=len(x))
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, self.hparams.max_epochs))
        return {"optimizer": opt, "lr_scheduler": sched}
