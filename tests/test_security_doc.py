"""docs/security.md points each claim to its test: every test file and test it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_test_the_threat_model_names_exists() -> None:
    doc = (ROOT / "docs" / "security.md").read_text()
    every_test = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    names = []
    # `tests/x.py::test_name`, or `::test_name` after a file was named.
    for match in re.finditer(r"`(tests/[\w/]+\.py)?(?:::(\w+))?`", doc):
        if match.group(1):
            assert (ROOT / match.group(1)).exists(), match.group(1)
        if match.group(2):
            names.append(match.group(2))
    missing = [n for n in names if not re.search(rf"def {n}\(", every_test)]
    assert not missing, f"docs/security.md names tests that do not exist: {missing}"
    assert len(names) >= 40
