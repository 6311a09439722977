"""Test configuration: the tests folder is importable (``paths``, ``oracle``)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
