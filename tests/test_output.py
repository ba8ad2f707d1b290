"""The --out DIR convention: atomic writes, summary.json, refusing to overwrite."""
from __future__ import annotations

import json

import numpy as np
import pytest
from numpy.testing import assert_allclose

from mltem import MltemError
from mltem.io import OutputDir, atomic_write


def test_outputs_are_written_and_recorded(tmp_path):
    import hyperspy.api as hs
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = OutputDir(tmp_path / "o", command="test", inputs=[tmp_path / "in.dm4"])
    a = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    axes = [{"name": "time", "scale": 0.5, "units": "s"}, {"name": "y", "scale": 0.1, "units": "nm"}, {"name": "x", "scale": 0.2, "units": "nm"}]
    out.save_array("a.hspy", a, axes=axes, quantity="Strain")
    out.save_csv("t.csv", [{"frame": 0, "v": 1.5}, {"frame": 1, "v": float("nan")}], ["frame", "v"])
    fig = plt.figure()
    out.save_figure("f.png", fig)
    with out.timer("work"):
        pass
    out.write_summary(parameters={"k": np.float32(2.0)}, results={"arr": np.arange(2)})
    s = hs.load(tmp_path / "o" / "a.hspy")
    assert_allclose(s.data, a)
    assert s.axes_manager.navigation_axes[0].units == "s"
    assert_allclose([ax.scale for ax in s.axes_manager.signal_axes], [0.2, 0.1])
    assert (tmp_path / "o" / "t.csv").read_text() == "frame,v\n0,1.5\n1,\n"
    summ = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summ["command"] == "test" and summ["parameters"] == {"k": 2.0}
    assert set(summ["outputs"]) == {"a.hspy", "t.csv", "f.png"}
    assert "work" in summ["timings_s"] and "numpy" in summ["versions"]
    assert not [p for p in (tmp_path / "o").iterdir() if ".partial" in p.name]


def test_non_empty_folder_refused_without_force(tmp_path):
    d = tmp_path / "busy"
    d.mkdir()
    (d / "keep.txt").write_text("user data")
    with pytest.raises(MltemError, match="busy: output folder is not empty.*--force"):
        OutputDir(d)
    out = OutputDir(d, force=True)
    out.save_text("new.txt", "x")
    assert (d / "keep.txt").read_text() == "user data"


def test_never_overwrites_an_input(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    inp = d / "strain.hspy"
    inp.write_text("input")
    out = OutputDir(d, force=True, inputs=[inp])
    with pytest.raises(MltemError, match="refusing to overwrite an input"):
        out.save_text("strain.hspy", "x")
    assert inp.read_text() == "input"


def test_out_is_a_file(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(MltemError, match="must be a folder"):
        OutputDir(f)


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "x.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_csv_row_length_checked(tmp_path):
    out = OutputDir(tmp_path / "o")
    with pytest.raises(ValueError, match="row has 1 values for 2 columns"):
        out.save_csv("t.csv", [[1]], ["a", "b"])


def test_outputs_get_the_usual_permissions(tmp_path):
    import os
    import stat

    out = OutputDir(tmp_path / "o")
    p = out.save_text("a.txt", "x")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask
