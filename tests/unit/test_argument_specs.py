"""The lifecycle role's argument_specs.yml is generated from per-step fragments: keep it fresh."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_lifecycle_argument_specs_are_up_to_date():
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "merge_argument_specs.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
