"""The command line: help, info on every shipped example, one-line errors with exit 2."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mltem.cli import main
from mltem.cli._main import COMMANDS

EXAMPLES = Path(__file__).parents[1] / "datasets" / "examples"
DESIGN_COMMANDS = {"info", "gpa", "holo", "valence", "index", "segment", "fronts", "simulate", "train", "export", "demo"}


def test_help_lists_every_command_of_the_design(capsys):
    assert DESIGN_COMMANDS <= set(COMMANDS)
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for name in DESIGN_COMMANDS:
        assert f"    {name} " in text


@pytest.mark.parametrize(
    "name, kind, shape",
    [
        ("lattice_hrtem.dm4", "image", [256, 256]),
        ("lattice_hrtem.tif", "image", [256, 256]),
        ("lattice_hrtem.emd", "image", [256, 256]),
        ("li_plating_movie.hspy", "image", [8, 128, 128]),
        ("li_plating_movie.gif", "image", [8, 128, 128]),
        ("mno_mn_l23.msa", "spectrum", [700]),
        ("nmc_core_loss_SI.dm3", "spectrum", [2, 21, 2048]),
    ],
)
def test_info_on_shipped_examples(capsys, name, kind, shape):
    assert main(["info", "--json", str(EXAMPLES / name)]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["kind"] == kind and d["shape"] == shape
    units = {a["units"] for a in d["axes"] if not a["navigate"]}
    if name.endswith(("dm4", "tif", "emd", "hspy")):
        assert units == {"nm"}
        assert all(a["scale"] == pytest.approx(0.02 if "lattice" in name else 2.0) for a in d["axes"] if not a["navigate"])
    if kind == "spectrum":
        assert units == {"eV"}


def test_info_text(capsys):
    assert main(["info", str(EXAMPLES / "lattice_hrtem.dm4")]) == 0
    out = capsys.readouterr().out
    assert "kind:        image" in out and "0.02" in out and "nm" in out


def _bad_files(tmp):
    (tmp / "empty.dm4").write_bytes(b"")
    (tmp / "garbage.dm3").write_bytes(b"this is not a DM file at all" * 10)
    real = (EXAMPLES / "lattice_hrtem.dm4").read_bytes()
    (tmp / "truncated.dm4").write_bytes(real[: len(real) // 3])
    (tmp / "notes.xyz").write_text("hello")
    (tmp / "broken.hspy").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    return {
        "missing": (tmp / "missing.dm3", "no such file"),
        "empty": (tmp / "empty.dm4", "file is empty"),
        "garbage": (tmp / "garbage.dm3", "cannot read the file"),
        "truncated": (tmp / "truncated.dm4", "cannot read"),
        "unknown": (tmp / "notes.xyz", "unknown file format '.xyz'"),
        "corrupt_hdf5": (tmp / "broken.hspy", "cannot read the file"),
    }


@pytest.mark.parametrize("case", ["missing", "empty", "garbage", "truncated", "unknown", "corrupt_hdf5"])
def test_bad_files_give_one_line_and_exit_2(tmp_path, capsys, case):
    path, msg = _bad_files(tmp_path)[case]
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert str(path) in err and msg in err
    assert "Traceback" not in err


def test_errors_from_the_installed_script_have_no_traceback(tmp_path):
    exe = Path(sys.executable).parent / "mltem"
    p = subprocess.run([str(exe), "info", str(tmp_path / "nope.dm4")], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr and "nope.dm4: no such file" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_spectrum_where_an_image_is_needed_and_nan_only_data(tmp_path):
    from mltem import MltemError, io

    s = io.load(EXAMPLES / "mno_mn_l23.msa")
    with pytest.raises(MltemError, match=r"mno_mn_l23.msa: holds a spectrum .*needs an image"):
        io.require_kind(s, "image")
    np.save(tmp_path / "nan.npy", np.full((8, 8), np.nan, np.float32))
    nan = io.load(tmp_path / "nan.npy")
    with pytest.raises(MltemError, match="nan.npy: holds no finite values"):
        io.check_finite(nan, path=tmp_path / "nan.npy")


@pytest.mark.parametrize("name", ["lattice_hrtem.dm4", "li_plating_movie.hspy", "lattice_hrtem.tif", "lattice_hrtem.emd"])
@pytest.mark.parametrize("frac", [0.5, 0.97])
def test_truncated_files_of_each_format(tmp_path, capsys, name, frac):
    data = (EXAMPLES / name).read_bytes()
    p = tmp_path / name
    p.write_bytes(data[: int(len(data) * frac)])
    assert main(["info", str(p)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(p) in err and "cannot read" in err
