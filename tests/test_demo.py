"""``mltem demo`` on the shipped examples writes a report with figures."""
from __future__ import annotations

import json

from mltem.cli import main


def test_demo_info_step_writes_report(tmp_path):
    out = tmp_path / "demo"
    assert main(["--quiet", "demo", "--out", str(out), "--only", "info"]) == 0
    report = (out / "report.md").read_text()
    assert "# mltem" in report and "lattice_hrtem.dm4" in report and "nmc_core_loss_SI.dm3" in report
    for line in report.splitlines():
        if line.startswith("!["):
            for part in line.split("](")[1:]:
                assert (out / part.split(")")[0]).is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["results"]["info"]["ok"] is True
    assert "info/lattice_hrtem_dm4.png" in summary["outputs"]
    # a second run into the same folder needs --force
    assert main(["--quiet", "demo", "--out", str(out), "--only", "info"]) == 2
