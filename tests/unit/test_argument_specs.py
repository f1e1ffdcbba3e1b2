"""The lifecycle role's argument_specs.yml: its two entry points share one set of options (an anchor)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "roles" / "lifecycle" / "meta" / "argument_specs.yml"


def test_install_validates_every_option_of_the_run():
    """install writes every lifecycle_* variable to the host for the timer's run: it checks the same ones."""
    specs = yaml.safe_load(SPECS.read_text())["argument_specs"]
    assert set(specs) == {"main", "install"}
    assert specs["install"]["options"] == specs["main"]["options"]
    assert "options: *lifecycle_options" in SPECS.read_text()  # one text, not a copy that can drift


def test_every_option_is_prefixed_typed_and_described():
    options = yaml.safe_load(SPECS.read_text())["argument_specs"]["main"]["options"]
    assert len(options) > 100
    for name, spec in options.items():
        assert name.startswith("lifecycle_"), name
        assert spec.get("type"), name
        assert spec.get("description"), name
