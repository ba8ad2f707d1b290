"""The trainable ``fronts`` task: segment reacted vs unreacted material in movie frames."""
from __future__ import annotations

import numpy as np

from mltem.fronts._netinput import NETWORK_NORMALISATION, network_input
from mltem.training import Task

__all__ = ["FrontsTask", "make_front_samples", "TRAIN_GEOMETRIES"]

#: Scenes the network is trained on (the lattice scene is GPA's job).
TRAIN_GEOMETRIES = ("wire", "core-shell", "planar")


def make_front_samples(n_samples: int, *, crop: int = 128, seed: int = 0, frames_per_movie: int = 4):
    """Network inputs and masks cut from random synthetic front movies.

    Each movie (random geometry, exponent 0.3-1.2, dose 20-200 counts/px, blur 0.5-1.5 px,
    drift, contrast sign and size) gives ``frames_per_movie`` samples: a random later
    frame with the movie's first frame, cropped to ``crop`` x ``crop`` px.

    Parameters
    ----------
    n_samples : int
    crop : int
        Crop size in px (a multiple of 8).
    seed : int
    frames_per_movie : int

    Returns
    -------
    x : numpy.ndarray
        (n_samples, 2, crop, crop) float32, see :func:`network_input`.
    y : numpy.ndarray
        (n_samples, crop, crop) int64 masks: 0 background, 1 unreacted, 2 reacted.
    """
    from mltem.simulate import simulate_front_movie

    rng = np.random.default_rng(seed)
    x = np.empty((n_samples, 2, crop, crop), np.float32)
    y = np.empty((n_samples, crop, crop), np.int64)
    i = 0
    while i < n_samples:
        geom = TRAIN_GEOMETRIES[rng.integers(len(TRAIN_GEOMETRIES))]
        shape = (crop, 2 * crop) if geom == "wire" else (crop, crop)
        m = simulate_front_movie(
            geom, n_frames=8, shape=shape, n=rng.uniform(0.3, 1.2), dose=rng.uniform(20, 200),
            blur_px=rng.uniform(0.5, 1.5), drift_px=rng.uniform(0, 0.8), swelling=rng.uniform(0.1, 0.5),
            elongation=rng.uniform(0.0, 0.25), travel_fraction=rng.uniform(0.4, 0.95),
            front_width_px=rng.uniform(0.8, 2.5), read_noise=rng.uniform(0, 4),
            seed=int(rng.integers(0, 2**31)),
        )
        for _ in range(frames_per_movie):
            if i >= n_samples:
                break
            j = int(rng.integers(1, len(m.frames)))
            x0 = int(rng.integers(0, shape[1] - crop + 1))
            inp = network_input(m.frames[j], m.frames[0])[0]
            if rng.random() < 0.5:  # the reacted side can lie either way
                inp, msk = inp[:, :, ::-1], m.masks[j][:, ::-1]
            else:
                msk = m.masks[j]
            x[i] = inp[:, :, x0 : x0 + crop]
            y[i] = msk[:, x0 : x0 + crop]
            i += 1
    return x, y


class FrontsTask(Task):
    """Segmentation of background / unreacted / reacted material for front tracking."""

    name = "fronts"
    loss = "cross_entropy"
    default_net = {"name": "unet", "in_channels": 2, "out_channels": 3, "base": 8, "depth": 3}
    classes = ("background", "unreacted", "reacted")

    def make_data(self, cfg):
        d = cfg.data
        return make_front_samples(int(d.get("n", 1024)), crop=int(d.get("crop", 128)), seed=cfg.seed,
                                  frames_per_movie=int(d.get("frames_per_movie", 4)))

    def transform(self, cfg):
        if not cfg.augment.get("flips"):
            return None
        import albumentations as A

        return A.Compose([A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5), A.RandomRotate90(p=0.5)])

    def export_info(self, cfg):
        return {"classes": list(self.classes), "dynamic_spatial": True, "normalisation": NETWORK_NORMALISATION,
                "extra": {"multiple": 8, "geometries": list(TRAIN_GEOMETRIES),
                          "held_out": "benchmarks use seeds >= 10**6 and frame sizes never used in training"}}
