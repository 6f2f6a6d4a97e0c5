"""``lungai demo`` (README command 1) end to end on a small phantom, scored against the phantom's exact truth."""

import json
from pathlib import Path

from click.testing import CliRunner

from lungai.cli.main import cli


def test_demo_analyses_the_phantom_and_writes_the_report(tmp_path):
    result = CliRunner().invoke(cli, ["--json", "--progress", "none", "demo", "-o", str(tmp_path / "out"),
                                      "--size", "160", "160", "80", "--spacing", "2.2", "2.2", "3.75"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["dice_right_lung"] >= 0.98 and summary["dice_left_lung"] >= 0.98
    assert summary["truth_lesions"] == 10 and summary["placed_lesions_hit"] >= 8
    assert summary["dice_lesions"] >= 0.75 and summary["patient_call"] is True
    assert abs(summary["percent_opacity"] - summary["truth_percent_opacity"]) < 2.0
    for path in summary["outputs"].values():
        assert Path(path).exists(), path
    assert json.loads((tmp_path / "out" / "demo_summary.json").read_text())["placed_lesions_hit"] == \
        summary["placed_lesions_hit"]
