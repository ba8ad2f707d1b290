"""File and calibration layer: reading TEM files, writing results."""
from mltem.io._frames import iter_chunks, n_frames
from mltem.io._info import describe, format_description
from mltem.io._load import (
    LAZY_THRESHOLD_BYTES,
    MOVIE_EXTENSIONS,
    check_finite,
    load,
    normalise_units,
    require_kind,
    signal_kind,
)
from mltem.io._write import OutputDir, array_to_signal, atomic_write, versions

__all__ = [
    "LAZY_THRESHOLD_BYTES",
    "MOVIE_EXTENSIONS",
    "OutputDir",
    "array_to_signal",
    "atomic_write",
    "check_finite",
    "describe",
    "format_description",
    "iter_chunks",
    "n_frames",
    "load",
    "normalise_units",
    "require_kind",
    "signal_kind",
    "versions",
]
