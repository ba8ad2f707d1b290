"""The movie-resampled intervals of benchmarks/bench_segment.py against known answers."""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_segment  # noqa: E402


def _movie(iou: float, ok: int, frames: int = 12):
    return (np.full(5, 100 * iou), np.full(5, 100.0), np.full(5, 95.0), ok, frames)


def test_identical_movies_give_a_point_interval():
    out = bench_segment.movie_bootstrap([_movie(0.9, 11)] * 8, draws=200)
    assert out["mean_iou_ci95_movies"] == [0.9, 0.9]
    assert out["sei_frames_within_10pct_ci95_movies"] == [round(11 / 12, 4)] * 2


def test_interval_covers_the_pooled_share_and_follows_the_movie_spread():
    # 9 movies with every SEI frame within 10 %, one with half of them: pooled 114 / 120
    pm = [_movie(0.9, 12)] * 9 + [_movie(0.5, 6)]
    out = bench_segment.movie_bootstrap(pm, draws=4000, seed=1)
    lo, hi = out["sei_frames_within_10pct_ci95_movies"]
    assert lo < 114 / 120 < hi and hi == 1.0  # a draw without the bad movie is all within
    # the share with k copies of the bad movie is (120 - 6 k) / 120: the 2.5 % quantile
    # of k ~ Binomial(10, 0.1) is 0, the 97.5 % one is 3 (P(k <= 2) = 0.93, P(k <= 3) = 0.987)
    assert lo == round((120 - 6 * 3) / 120, 4)
    # the pooled IoU with k bad movies of 10 drawn: (90 (10 - k) + 50 k) / 1000
    assert out["mean_iou_ci95_movies"] == [round(0.9 - 0.04 * 3, 4), 0.9]


def test_one_movie_gives_no_interval():
    assert bench_segment.movie_bootstrap([_movie(0.9, 12)]) == {}
