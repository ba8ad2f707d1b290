"""mltem.holography against holospy on holospy's real Fe-needle hologram pair (if installed)."""
import warnings

import numpy as np
import pytest

holospy = pytest.importorskip("holospy")


def test_matches_holospy_on_real_pair():
    from holospy import data as hdata

    from mltem import holography as H

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = hdata.Fe_needle_hologram()
        r = hdata.Fe_needle_reference_hologram()
        sbp = r.estimate_sideband_position(sb="lower")
        sbs = r.estimate_sideband_size(sbp)
        radius = float(np.asarray(sbs.data).ravel()[0])
        w = s.reconstruct_phase(r, sb_position=sbp, sb_size=sbs, sb_smoothness=0.05 * radius, show_progressbar=False)
        ph_h = np.asarray(w.unwrapped_phase().data)
    ny, nx = s.data.shape
    p = [int(v) for v in np.asarray(sbp.data).ravel()]
    sideband = (-(p[0] if p[0] <= ny // 2 else p[0] - ny), -(p[1] if p[1] <= nx // 2 else p[1] - nx))
    ours = H.reconstruct_hologram(np.asarray(s.data), np.asarray(r.data), sideband=sideband, aperture="soft",
                                  aperture_radius=radius, smoothness=0.05 * radius).phase
    d = ours - ph_h
    d -= d.mean()
    assert np.sqrt(np.mean(d**2)) <= 0.02
    # our automatic detection finds the same sideband (sub-pixel) on the reference
    sb = H.find_sideband(np.asarray(r.data))
    assert np.hypot(sb.ky - sideband[0], sb.kx - sideband[1]) < 1.0
