"""Settings as a process loads them from its environment: for what is decided once, at start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def settings_loaded_with(env: dict[str, str], expression: str) -> subprocess.CompletedProcess[str]:
    """Load Callboard's settings in a fresh interpreter with ``env`` added to this one's
    environment, and print ``repr(expression)`` (``settings`` is django.conf.settings).
    Returns the finished process: its return code, output and error output."""
    code = (
        "import django; django.setup(); from django.conf import settings; "
        f"print(repr({expression}))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "dashboard.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
