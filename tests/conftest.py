"""Shared pytest set-up: make ``ansible_collections.jts.tiered_storage`` importable from a checkout."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLLECTIONS = ROOT / ".collections"
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))
# Ansible's collection finder, installed before any test imports the collection: templates
# rendered in tests then find this collection's filters (jts.tiered_storage.*) by name.
os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", str(COLLECTIONS))
from ansible.plugins.loader import init_plugin_loader  # noqa: E402

init_plugin_loader([str(COLLECTIONS)])
