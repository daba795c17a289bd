"""`pip install .` must give a kaudit whose built-in rules and report assets ship inside the wheel."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from kaudit.paths import builtin_rules_dir
from kaudit.ruleset import rule_files

REPO = Path(__file__).resolve().parents[1]


def test_wheel_ships_rules_and_reports_and_runs_from_anywhere(tmp_path: Path) -> None:
    # hatchling is a test dependency, so the wheel builds offline without build isolation
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(REPO)], check=True, capture_output=True, timeout=300)
    [wheel] = (tmp_path / "dist").glob("kaudit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped_rules = [n for n in names if n.startswith("kaudit/_data/rules/") and n.endswith(".yaml")]
    assert len(shipped_rules) == len(rule_files(builtin_rules_dir()))
    assert "kaudit/_data/reports/report.schema.json" in names
    assert "kaudit/schemas/rule.schema.json" in names

    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "pod.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
                                        "  containers: [{name: a, image: nginx}]\n")
    env = {**os.environ, "PYTHONPATH": str(target)}  # the installed copy, not this checkout
    where = subprocess.run([sys.executable, "-c", "import kaudit.paths as p; print(p.builtin_rules_dir())"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.strip() == str(target / "kaudit" / "_data" / "rules")
    scan = subprocess.run([sys.executable, "-m", "kaudit.cli", "scan", "pod.yaml"], cwd=elsewhere, env=env,
                          capture_output=True, text=True)
    assert scan.returncode == 1, scan.stderr
    assert "pod.yaml:5:16" in scan.stdout and "run-as-root" in scan.stdout
