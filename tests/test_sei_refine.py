"""SEI-thickness refinement from the edge profile: the profile of a known layer, the tree
evaluator against scikit-learn's, the shipped refiner's tie to the shipped network and its
effect on a held-out movie whose electrode edge is fainter than its SEI and on one with a
step edge (its gate), and its 90 % error bound."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from mltem import MltemError
from mltem.registry import find_model
from mltem.segment import (
    PROFILE_BINS,
    SeiRefiner,
    edge_profiles,
    load_segment_model,
    load_sei_refiner,
    measure_movie,
    refine_features,
    refine_sei_rows,
    segment_frames,
)
from mltem.segment._morph import dilate_square
from mltem.segment._refine import THICKNESS_FEATURE
from mltem.simulate import simulate_movie


def layer_movie(T=3, n=96, electrode=30, sei=8, levels=(300.0, 600.0, 900.0)):
    """Electrode (x < electrode), an SEI band, electrolyte; constant intensities per class."""
    labels = np.zeros((T, n, n), np.uint8)
    labels[:, :, :electrode] = 1
    labels[:, :, electrode : electrode + sei] = 2
    img = np.where(labels == 1, levels[0], np.where(labels == 2, levels[1], levels[2])).astype(np.float32)
    psei = np.where(labels == 2, 200, 0).astype(np.uint8)
    return img, labels, psei


def test_edge_profile_of_a_flat_layer_has_the_known_mass_thickness():
    img, labels, psei = layer_movie()
    p = edge_profiles(img, labels, psei)
    lo, hi = PROFILE_BINS
    d = np.arange(lo, hi) + 0.5  # bin centres, px from the electrode surface
    mean = p["s"].sum(0) / np.maximum(p["n"].sum(0), 1)
    np.testing.assert_allclose(p["level"], 900.0)
    np.testing.assert_allclose(mean[(d < 0) & (d > -12)], 300.0)  # electrode
    np.testing.assert_allclose(mean[(d > 0) & (d < 8)], 600.0)  # the 8 px SEI
    np.testing.assert_allclose(mean[(d > 8) & (p["n"].sum(0) > 0)], 900.0)  # electrolyte
    q = p["q"].sum(0) / np.maximum(p["n"].sum(0), 1)
    np.testing.assert_allclose(q[(d > 0) & (d < 8)], 200 / 255, rtol=1e-6)
    x = refine_features(p, np.full(3, 8.0))
    nb = hi - lo
    np.testing.assert_allclose(x[0, :nb][(d > 0) & (d < 8)], -np.log(600 / 900), rtol=1e-6)
    np.testing.assert_allclose(x[:, -5:-2], [[8, 8, 0]] * 3)  # window median, frame value, departure
    np.testing.assert_allclose(x[:, THICKNESS_FEATURE], 8)  # the column the clip and the bound's target read
    np.testing.assert_allclose(x[:, -2:], [[0, 2], [1, 1], [2, 0]])  # frames from the first / last


def test_edge_profile_skips_surface_without_sei_and_frames_without_electrode():
    img, labels, psei = layer_movie(T=2)
    labels[1] = 0  # no electrode in frame 1
    labels[0, 48:, 30:38] = 0  # the lower half of the surface carries no SEI
    p = edge_profiles(img, labels, psei)
    assert np.isnan(p["level"][1]) and p["n"][1].sum() == 0
    lo, _ = PROFILE_BINS
    inside = p["n"][0][: -lo]  # electrode bins: only rows 4..47 (borders and bare surface left out)
    assert inside.max() == 44


def test_square_dilation_equals_iterated_8_connected_dilation():
    from scipy import ndimage as ndi

    rng = np.random.default_rng(3)
    for shape in ((61, 47), (1, 9), (5, 1), (40, 3)):
        for density in (0.002, 0.05, 0.5):
            m = rng.random(shape) < density
            m[0, -1] = m[-1, 0] = True  # on the border: nothing may enter from outside
            for r in (1, 2, 3, 5, 8, 13):
                assert np.array_equal(dilate_square(m, r), ndi.binary_dilation(m, np.ones((3, 3), bool), iterations=r))
            assert np.array_equal(dilate_square(m, 0), m)
    with pytest.raises(ValueError, match="non-negative integer"):
        dilate_square(m, -1)


def test_bounding_box_and_its_growth_are_clipped_to_the_frame():
    from mltem.segment._morph import bounding_box, grow_box

    m = np.zeros((20, 30), bool)
    assert bounding_box(m) is None
    m[3, 5] = m[7, 2] = True
    box = bounding_box(m)
    assert box == (slice(3, 8), slice(2, 6)) and m[box].sum() == 2
    assert grow_box(box, 4, m.shape) == (slice(0, 12), slice(0, 10))
    assert grow_box((slice(15, 20), slice(25, 30)), 3, m.shape) == (slice(12, 20), slice(22, 30))


def test_tree_evaluator_matches_sklearn():
    from sklearn.ensemble import HistGradientBoostingRegressor

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 7))
    y = np.sin(x[:, 0]) + 0.5 * (x[:, 1] > 0.3) * x[:, 2] + 0.1 * rng.normal(size=2000)
    model = HistGradientBoostingRegressor(max_iter=60, max_leaf_nodes=15, random_state=0).fit(x, y)
    ref = SeiRefiner.from_sklearn(model, 7)
    xt = rng.normal(size=(500, 7))
    np.testing.assert_allclose(ref.predict(xt), model.predict(xt), rtol=0, atol=1e-12)
    again = SeiRefiner(ref.arrays())  # the arrays as stored in the .npz
    np.testing.assert_allclose(again.predict(xt), model.predict(xt), rtol=0, atol=1e-12)
    with pytest.raises(MltemError, match=r"expected \(n, 7\) features"):
        ref.predict(xt[:, :5])


def test_bagged_mean_and_gate_match_sklearn():
    # a bag of regressors stored as one ensemble, a classifier's log-odds as the gate, and
    # the gated correction (1 - p) * wedge + p * step, all equal to scikit-learn's figures
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    rng = np.random.default_rng(1)
    x = rng.normal(size=(1500, 5))
    y = np.cos(x[:, 0]) + 0.1 * rng.normal(size=1500)
    regs = [HistGradientBoostingRegressor(max_iter=40, random_state=k, early_stopping=True).fit(x, y) for k in range(3)]
    clf = HistGradientBoostingClassifier(max_iter=40, random_state=0).fit(x, x[:, 1] + 0.3 * rng.normal(size=1500) > 0)
    xt = rng.normal(size=(300, 5))
    bag = SeiRefiner.mean([SeiRefiner.from_sklearn(m, 5) for m in regs])
    want = np.mean([m.predict(xt) for m in regs], 0)
    np.testing.assert_allclose(bag.predict(xt), want, rtol=0, atol=1e-12)
    gate = SeiRefiner.from_sklearn(clf, 5)
    np.testing.assert_allclose(gate.output(xt), clf.decision_function(xt), rtol=0, atol=1e-12)
    step = SeiRefiner.from_sklearn(regs[0], 5)
    gated = SeiRefiner(bag.with_gate(gate, step).arrays())  # as stored
    p = clf.predict_proba(xt)[:, 1]
    np.testing.assert_allclose(gated.step_probability(xt), p, rtol=0, atol=1e-12)
    np.testing.assert_allclose(gated.predict(xt), (1 - p) * want + p * regs[0].predict(xt), rtol=0, atol=1e-12)
    # the gate's probability, once evaluated, is taken as given
    np.testing.assert_array_equal(gated.predict(xt, step_probability=gated.step_probability(xt)), gated.predict(xt))
    np.testing.assert_allclose(gated.predict(xt, step_probability=np.ones(len(xt))), regs[0].predict(xt), rtol=0,
                               atol=1e-12)
    assert bag.step_probability(xt) is None
    a = gated.arrays()
    with pytest.raises(MltemError, match="gate needs a step-edge correction"):
        SeiRefiner({k: v for k, v in a.items() if not k.startswith("step_")})
    with pytest.raises(MltemError, match="gate takes another number of features"):
        SeiRefiner({**a, "gate_n_features": np.int32(6)})


def test_tree_arrays_pointing_outside_are_refused():
    a = {"feature": [0, 0, 0], "threshold": [0.0, 0, 0], "left": [1, 0, 0], "right": [5, 0, 0],
         "leaf": [False, True, True], "value": [0.0, 1, 2], "roots": [0], "baseline": 0.0, "n_features": 1}
    with pytest.raises(MltemError, match="outside the tree"):
        SeiRefiner(a)
    a["right"] = [2, 0, 0]
    assert SeiRefiner(a).predict(np.array([[-1.0], [1.0]])).tolist() == [1.0, 2.0]


def _constant(value, n_features):
    """A one-leaf ensemble predicting ``value`` everywhere."""
    return SeiRefiner({"feature": [0], "threshold": [0.0], "left": [0], "right": [0], "leaf": [True], "value": [0.0],
                       "roots": [0], "baseline": value, "n_features": n_features})


def test_refine_rows_keeps_the_mask_value_and_clips_the_correction_to_half():
    img, labels, psei = layer_movie()
    rows, _ = measure_movie(labels, pixel_size_nm=2.0, frame_time_s=1.0)
    nf = refine_features(edge_profiles(img, labels, psei), [8] * 3).shape[1]
    corr = refine_sei_rows(rows, edge_profiles(img, labels, psei), _constant(100.0, nf), pixel_size_nm=2.0)
    np.testing.assert_allclose([r["sei_thickness_masks_nm"] for r in rows], 16.0)
    np.testing.assert_allclose(corr, 8.0)  # 100 px asked, clipped to half of 16 nm
    np.testing.assert_allclose([r["sei_thickness_nm"] for r in rows], 8.0)
    np.testing.assert_allclose([r["sei_thickness_smoothed_nm"] for r in rows], 8.0)
    rows, _ = measure_movie(labels, pixel_size_nm=2.0, frame_time_s=1.0)
    refine_sei_rows(rows, edge_profiles(img, labels, psei), _constant(-100.0, nf), pixel_size_nm=2.0)  # thickening alike
    np.testing.assert_allclose([r["sei_thickness_nm"] for r in rows], 24.0)


def test_error_bound_in_nm_with_its_floor_and_none_without_one():
    img, labels, psei = layer_movie()
    prof = edge_profiles(img, labels, psei)
    nf = refine_features(prof, [8] * 3).shape[1]
    rows, _ = measure_movie(labels, pixel_size_nm=2.0, frame_time_s=1.0)
    refine_sei_rows(rows, prof, _constant(0.0, nf), pixel_size_nm=2.0)
    assert np.isnan([r["sei_thickness_err_nm"] for r in rows]).all()  # no bound: NaN, as measure_movie has it
    ref = _constant(0.0, nf).with_bound(_constant(1.5, nf))
    again = SeiRefiner(ref.arrays())  # stored and read back, as the .npz
    assert again.error_bound is not None
    rows, _ = measure_movie(labels, pixel_size_nm=2.0, frame_time_s=1.0)
    refine_sei_rows(rows, prof, again, pixel_size_nm=2.0)
    np.testing.assert_allclose([r["sei_thickness_err_nm"] for r in rows], 3.0)  # 1.5 px x 2 nm/px
    rows, _ = measure_movie(labels, pixel_size_nm=2.0, frame_time_s=1.0)
    refine_sei_rows(rows, prof, _constant(0.0, nf).with_bound(_constant(0.05, nf)), pixel_size_nm=2.0)
    np.testing.assert_allclose([r["sei_thickness_err_nm"] for r in rows], 0.5)  # the 0.25 px floor
    with pytest.raises(MltemError, match="another number of features"):
        _constant(0.0, nf).with_bound(_constant(1.0, nf - 1))


def test_shipped_refiner_belongs_to_the_shipped_network(tmp_path):
    seg = find_model("segment-unet", task="segment")
    ref = load_sei_refiner(seg)
    assert ref is not None and ref.card.extra["segment_model_sha256"] == seg.sha256
    other = dataclasses.replace(seg, sha256="0" * 64)
    assert load_sei_refiner(other) is None  # a fine-tuned network gets no refiner of another's
    assert load_sei_refiner(seg, name="no-such-refiner") is None
    # a refiner file that does not match its card is refused
    card = json.loads(ref.card.path.with_suffix(".json").read_text())
    (tmp_path / card["file"]).write_bytes(ref.card.path.read_bytes()[:-8] + b"12345678")
    (tmp_path / "segment-sei-refine.json").write_text(json.dumps(card))
    with pytest.raises(MltemError, match="sha256"):
        load_sei_refiner(seg, name=str(tmp_path / "segment-sei-refine.json"))


def test_refiner_is_found_by_the_network_it_was_trained_for(tmp_path, monkeypatch):
    # without a name, the registered refiner whose card names the network's sha256: a
    # second network (e.g. the dark-field one) gets its own refiner, the shipped one keeps its
    seg = find_model("segment-unet", task="segment")
    other = dataclasses.replace(seg, name="segment-unet-other", sha256="1" * 64)
    assert load_sei_refiner(other) is None
    mod = _training_script()
    card = mod.write(_constant(0.5, 3), tmp_path, "segment-sei-refine-other", other, {"movies": 1}, {})
    monkeypatch.setenv("MLTEM_MODELS_DIR", str(tmp_path))
    mine = load_sei_refiner(other)
    assert mine is not None and mine.card.name == "segment-sei-refine-other" and mine.card.sha256 == card.sha256
    np.testing.assert_allclose(mine.predict(np.zeros((2, 3))), 0.5)
    shipped = load_sei_refiner(seg)
    assert shipped.card.name == "segment-sei-refine" and shipped.card.extra["segment_model_sha256"] == seg.sha256
    assert load_sei_refiner(other, name="segment-sei-refine") is None  # named: trained for another network
    dark = find_model("segment-unet-haadf", task="segment")
    assert load_sei_refiner(dark).card.name == "segment-sei-refine-haadf"  # the shipped dark-field pair


def test_refinement_fixes_a_held_out_faint_edge_movie():
    """Held-out liquid cell (benchmark seed 7002006, 250 e/px): its electrode edge carries
    0.86 times the SEI's excess mass-thickness and the network puts the inner SEI surface
    2-3 px inside the electrode; the edge profile moves it back."""
    seed0, i = 7_002_000, 6
    px = float(np.random.default_rng([seed0, i]).uniform(3.0, 7.0))
    mv = simulate_movie(12, (256, 256), kind="liquid", seed=seed0 + i, dose=250.0, pixel_size_nm=px)
    model = load_segment_model("segment-unet")
    labels, psei = segment_frames(mv.frames, model=model, tile=256, smooth_frames=3, sei_prob=True)
    rows, _ = measure_movie(labels, pixel_size_nm=px, frame_time_s=mv.frame_time_s)
    masks_err = np.abs(np.array([r["sei_thickness_nm"] for r in rows]) / mv.sei_thickness_nm - 1)
    refine_sei_rows(rows, edge_profiles(mv.frames, labels, psei), load_sei_refiner(model.card), pixel_size_nm=px)
    err = np.abs(np.array([r["sei_thickness_nm"] for r in rows]) / mv.sei_thickness_nm - 1)
    assert np.median(masks_err) > 0.2
    assert np.median(err) < 0.06 and (err <= 0.1).mean() >= 0.75
    # the 90 % bound: the truth lies within it on this movie (measured: 11 of 12 frames),
    # and the frames it calls within 10 % are
    got = np.array([r["sei_thickness_nm"] for r in rows])
    bound = np.array([r["sei_thickness_err_nm"] for r in rows])
    assert (np.abs(got - mv.sei_thickness_nm) <= bound).mean() >= 0.75
    sure = bound <= 0.1 * got
    assert sure.any() and (err[sure] <= 0.1).all()


def test_refinement_fixes_a_held_out_step_edge_movie():
    """Held-out liquid cell with a step electrode edge (a patterned film; benchmark seed
    7001007, 60 e/px): the network reads the layer thin (masks: median error 11 %, 1 frame of
    12 within 10 %); the gate calls the edge a step and its correction brings every frame
    within 10 % (measured: median 2.8 %), with the truth inside the bound."""
    seed0, i = 7_001_000, 7
    px = float(np.random.default_rng([seed0, i]).uniform(3.0, 7.0))
    mv = simulate_movie(12, (256, 256), kind="liquid", seed=seed0 + i, dose=60.0, pixel_size_nm=px,
                        electrode_edge={"ramp_px": 0.0})
    model = load_segment_model("segment-unet")
    labels, psei = segment_frames(mv.frames, model=model, tile=256, smooth_frames=3, sei_prob=True)
    rows, _ = measure_movie(labels, pixel_size_nm=px, frame_time_s=mv.frame_time_s)
    masks = np.array([r["sei_thickness_nm"] for r in rows])
    profiles = edge_profiles(mv.frames, labels, psei)
    refiner = load_sei_refiner(model.card)
    assert refiner.step_probability(refine_features(profiles, masks / px)).min() > 0.9
    refine_sei_rows(rows, profiles, refiner, pixel_size_nm=px)
    assert min(r["sei_edge_step_probability"] for r in rows) > 0.9
    got = np.array([r["sei_thickness_nm"] for r in rows])
    masks_err, err = np.abs(masks / mv.sei_thickness_nm - 1), np.abs(got / mv.sei_thickness_nm - 1)
    assert np.median(masks_err) > 0.08 and (masks_err <= 0.1).mean() <= 0.25 and np.median(masks - mv.sei_thickness_nm) < 0
    assert np.median(err) < 0.05 and (err <= 0.1).mean() >= 0.9
    bound = np.array([r["sei_thickness_err_nm"] for r in rows])
    assert (np.abs(got - mv.sei_thickness_nm) <= bound).mean() >= 0.9


def test_training_script_writes_a_refiner_the_registry_loads(tmp_path):
    mod = _training_script()
    seg = load_segment_model("segment-unet")
    examples = [mod.movie_example(9, i, seg) for i in range(3)]
    x, y, g = mod.design(examples)
    assert x.shape[0] == len(y) == len(g) and set(g) <= {0, 1, 2}
    # the target: the mask-based thickness minus the simulator's truth, px, frames with both
    oks = [np.isfinite(e["truth"]) & (e["truth"] > 0) & np.isfinite(e["got"]) for e in examples]
    np.testing.assert_allclose(y, np.concatenate([(e["got"] - e["truth"])[ok] for e, ok in zip(examples, oks)]))
    assert len(y) == sum(int(ok.sum()) for ok in oks) > 12
    ref, no_sd, _, parity = mod.fit(x, y, g, folds=1)
    assert ref.error_bound is None and no_sd is None and parity < 1e-9  # the bound learns from out-of-fold errors
    ref, oof_sd, oof, parity = mod.fit(x, y, g, folds=3)
    assert oof_sd > 0 and ref.error_bound is not None and ref.gate is None and parity < 1e-9
    by = mod.oof_by_thickness(x, y, oof)
    assert sum(b["frames"] for b in by.values()) == len(y)
    assert all(0 <= b["within_10pct"] <= 1 for b in by.values())
    card = mod.write(ref, tmp_path, "segment-sei-refine", seg.card, {"movies": 3}, {})
    loaded = load_sei_refiner(seg.card, name=str(tmp_path / "segment-sei-refine.json"))
    assert loaded is not None and loaded.card.sha256 == card.sha256
    np.testing.assert_allclose(loaded.predict(x), ref.predict(x), atol=1e-12)
    np.testing.assert_allclose(loaded.bound(x), ref.bound(x), atol=1e-12)
    assert [o["name"] for o in card.outputs] == ["correction_px", "error_bound_px"]


def _training_script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "train" / "sei_refine.py"
    spec = importlib.util.spec_from_file_location("sei_refine", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_training_script_gates_a_step_edge_correction():
    # toy frames: the step-edge movies (told apart by feature 1) carry an offset of 2 px the
    # wedge movies do not; the gated, bagged correction finds both, as scikit-learn does
    mod = _training_script()
    rng = np.random.default_rng(3)
    n = 3000
    step = rng.random(n) < 0.4
    x = rng.normal(size=(n, 8))
    x[:, 1] += np.where(step, 2.0, -2.0)
    x[:, THICKNESS_FEATURE] = rng.uniform(8, 20, n)
    y = 0.5 * np.tanh(x[:, 0]) + 2.0 * step + 0.05 * rng.normal(size=n)
    groups = np.arange(n) // 10
    ref, oof_sd, oof, parity = mod.fit(x, y, groups, step=step, bag=2, folds=3)
    assert ref.gate is not None and ref.error_bound is not None and parity < 1e-9
    assert oof_sd < 0.35  # against a spread of 1 px in the targets
    p = ref.step_probability(x)
    assert (p[step] > 0.9).mean() > 0.98 and (p[~step] < 0.1).mean() > 0.98
    assert np.abs(ref.predict(x) - y).mean() < 0.1
    # the wedge correction alone never saw the offset
    assert np.abs(ref.output(x[step]) - y[step]).mean() > 1.5


def test_training_script_picks_the_step_edge_movies():
    # the movies whose liquid cell (without a faint edge) gets a step edge: the same list
    # synthetic_movie draws, without simulating them
    from mltem.segment._task import synthetic_movie

    mod = _training_script()
    movies, idx = mod.step_edge_movies(556, 0, 12)
    assert idx == [4, 8, 11]  # measured once; liquid cells drawn as open cells or with a faint edge are left out
    small = {**movies, "frames": 1, "size": 48}
    for i in range(12):
        edge = synthetic_movie(556, i, **small).params.get("electrode_edge")
        assert (i in idx) == (edge is not None and edge["floor"] != 0.35)
    # --haadf-fraction 1 (the dark-field refiner): the same movies, edges and step list, imaged
    # as HAADF STEM
    dark, idx_dark = mod.step_edge_movies(556, 0, 12, {**mod.MOVIES, "haadf_fraction": 1.0})
    assert idx_dark == idx
    for i in (0, 4):
        bf, df = synthetic_movie(556, i, **small), synthetic_movie(556, i, **{**dark, "frames": 1, "size": 48})
        assert (bf.params["detector"], df.params["detector"]) == ("bf", "haadf")
        np.testing.assert_array_equal(bf.masks, df.masks)
    with pytest.raises(SystemExit):
        mod.main(["--seed", "1", "--movies", "0:2", "--haadf-fraction", "1.5", "--out", "unused"])


def _profile_whole_frame(img, labels, psei, nb, lo):
    """The edge profile computed over the whole frame, as written before it was windowed."""
    from scipy import ndimage as ndi

    def dil(m, r=1):
        return ndi.binary_dilation(m, np.ones((3, 3), bool), iterations=r)

    electrode, sei = labels == 1, labels == 2
    d_out, i_out = ndi.distance_transform_edt(~electrode, return_indices=True)
    d_in, i_in = ndi.distance_transform_edt(electrode, return_indices=True)
    dist = np.where(electrode, -(d_in - 0.5), d_out - 0.5)
    iy, ix = np.where(electrode, i_in[0], i_out[0]), np.where(electrode, i_in[1], i_out[1])
    ok = np.where(electrode, (sei & dil(electrode))[iy, ix], (electrode & dil(sei))[iy, ix])
    ok &= ~dil((labels == 3) | (labels == 4), 3)
    ok[:4] = ok[-4:] = False
    ok[:, :4] = ok[:, -4:] = False
    sel = ok & (dist >= lo) & (dist < lo + nb)
    if sel.sum() < 50:
        return None
    b = np.floor(dist[sel] - lo).astype(np.intp)
    bg = labels == 0
    if bg.sum() > 200:
        core = bg & ~dil(~bg, 8)
        level = float(np.median(img[core])) if core.any() else np.nan
    else:
        level = float(np.median(img[dist > 20])) if (dist > 20).any() else np.nan
    return np.bincount(b, None, nb), np.bincount(b, img[sel], nb), np.bincount(b, psei[sel], nb), level


def test_windowed_edge_profile_equals_the_whole_frame_one():
    from mltem.segment._refine import PROFILE_BINS, _frame_profile

    lo, hi = PROFILE_BINS
    rng = np.random.default_rng(0)
    for _ in range(40):
        h, w = rng.integers(40, 160, 2)
        lab = np.full((h, w), rng.choice([0, 3, 4]), np.uint8)  # mostly lithium or bubble: the other level rule
        yy, xx = np.mgrid[:h, :w]
        d = (xx - rng.uniform(0.2, 0.8) * w) * np.cos(a := rng.uniform(0, np.pi)) + (yy - h / 2) * np.sin(a)
        lab[d < 0] = 1
        lab[(d >= 0) & (d < rng.uniform(2, 25))] = 2
        specks = rng.random((h, w)) < 0.01
        lab[specks] = rng.integers(0, 5, specks.sum())
        img = rng.normal(100, 10, (h, w)).astype(np.float32)
        ps = rng.random((h, w)).astype(np.float32)
        got, expect = _frame_profile(img, lab, ps, hi - lo, lo), _profile_whole_frame(img, lab, ps, hi - lo, lo)
        assert (got is None) == (expect is None)
        if got is not None:
            for u, v in zip(got, expect):
                np.testing.assert_array_equal(u, v)
