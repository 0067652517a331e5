"""Where the tests find the checkout, its bundled datasets and this interpreter's commands."""

from __future__ import annotations

import sys
from pathlib import Path

from tabpipe.core.layout import paths

ROOT = Path(__file__).resolve().parents[2]
RAW = paths(ROOT)["data"]["raw"]  # the bundled datasets
BIN = Path(sys.executable).parent
