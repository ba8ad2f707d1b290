"""Frames labelled by hand: mask images for some frames of a movie, for fine-tuning.

Layout of a labels folder::

    DIR/movie.hspy            # the movie (any format mltem reads); or pass movie=...
    DIR/masks/frame_0012.png  # one mask image per labelled frame; the trailing number
    DIR/masks/frame_0040.png  # is the frame index; pixel values are classes 0..4

Masks may be PNG/TIFF (8-bit, one channel) or ``.npy``; ``masks/`` may be omitted (the
mask files then sit in DIR itself).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from mltem._errors import MltemError
from mltem.segment._preprocess import normalise_frames, stack_neighbours

__all__ = ["find_label_files", "load_labelled_frames", "tile_pairs"]

_MASK_EXT = (".png", ".tif", ".tiff", ".npy")
_NUM = re.compile(r"(\d+)$")


def find_label_files(folder) -> dict[int, Path]:
    """Frame index -> mask file in ``folder/masks`` (or ``folder``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MltemError("labels folder does not exist", path=folder)
    where = folder / "masks" if (folder / "masks").is_dir() else folder
    out = {}
    for p in sorted(where.iterdir()):
        if p.suffix.lower() not in _MASK_EXT or p.stem.startswith("movie"):
            continue
        mt = _NUM.search(p.stem)
        if mt:
            out[int(mt.group(1))] = p
    if not out:
        raise MltemError("no mask images found (expected e.g. masks/frame_0012.png with classes 0..4)", path=where)
    return out


def _read_mask(p: Path) -> np.ndarray:
    if p.suffix.lower() == ".npy":
        m = np.load(p, allow_pickle=False)
    else:
        import imageio.v3 as iio

        m = iio.imread(p)
    m = np.asarray(m)
    if m.ndim == 3:  # an RGB(A) image of grey values
        m = m[..., 0]
    if m.ndim != 2 or not np.issubdtype(m.dtype, np.integer) or m.min() < 0 or m.max() > 4:
        raise MltemError(f"a mask must be a 2D image of integer classes 0..4 (got {m.dtype} {m.shape}, "
                         f"values {m.min()}..{m.max()})", path=p)
    return m.astype(np.uint8)


def load_labelled_frames(folder, *, movie=None, neighbours: int = 1):
    """Network inputs and masks of the labelled frames of a movie.

    Parameters
    ----------
    folder : path
        Labels folder (see the module docstring).
    movie : path, optional
        The movie; default the file ``movie.*`` in ``folder``.
    neighbours : int
        Neighbouring frames on each side as extra channels (the network's setting).

    Returns
    -------
    x : numpy.ndarray
        (n, 2 * neighbours + 1, y, x) float32.
    y : numpy.ndarray
        (n, y, x) uint8.
    """
    from mltem import io

    folder = Path(folder)
    files = find_label_files(folder)
    if movie is None:
        cands = [p for p in folder.iterdir() if p.stem == "movie" and p.is_file()]
        if not cands:
            raise MltemError("no movie: put it in the labels folder as movie.<ext> or name it in data.movie", path=folder)
        movie = cands[0]
    s = io.load(movie)
    io.require_kind(s, "image", path=movie)
    data = np.asarray(s.data, dtype=np.float32).reshape(-1, *s.data.shape[-2:])
    xs, ys = [], []
    for t, p in sorted(files.items()):
        if not 0 <= t < len(data):
            raise MltemError(f"mask for frame {t}, but the movie has {len(data)} frames", path=p)
        m = _read_mask(p)
        if m.shape != data.shape[1:]:
            raise MltemError(f"mask is {m.shape}, frames are {data.shape[1:]}", path=p)
        lo, hi = max(0, t - neighbours), min(len(data), t + neighbours + 1)
        normed = normalise_frames(data[lo:hi])
        x = stack_neighbours(normed, neighbours=neighbours)[t - lo]
        xs.append(x)
        ys.append(m)
    return np.stack(xs), np.stack(ys)


def tile_pairs(x: np.ndarray, y: np.ndarray, size: int):
    """Cut (n, C, H, W) inputs and (n, H, W) masks into ``size`` x ``size`` tiles.

    Tiles cover each frame (the last row/column is aligned to the edge); frames smaller
    than ``size`` are padded by reflection.
    """
    from mltem.infer import tile_starts

    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 4 or y.ndim != 3 or x.shape[0] != y.shape[0] or x.shape[2:] != y.shape[1:]:
        raise ValueError(f"x must be (n, C, H, W) and y (n, H, W) of the same frames, got {x.shape}, {y.shape}")
    ph, pw = max(0, size - x.shape[2]), max(0, size - x.shape[3])
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="reflect")
        y = np.pad(y, ((0, 0), (0, ph), (0, pw)), mode="reflect")
    xt, yt = [], []
    for i in range(len(x)):
        for r in tile_starts(x.shape[2], size, size // 4):
            for c in tile_starts(x.shape[3], size, size // 4):
                xt.append(x[i, :, r : r + size, c : c + size])
                yt.append(y[i, r : r + size, c : c + size])
    return np.stack(xt), np.stack(yt)
