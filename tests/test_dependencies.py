"""The dependencies: lower bounds that leave out releases with advisories, the locks `make`,
CI and production install from, and the audit's verdict (.ci/audit.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
LOCK = ROOT / "requirements.lock"
PRODUCTION_LOCK = ROOT / "requirements-production.lock"
UNREACHABLE = "pip-audit: advisory data unreachable, not checked"


def pins(lock: Path) -> dict[str, Version]:
    """Each locked release's name and version (one per name: the lines of this platform)."""
    found: dict[str, Version] = {}
    for line in lock.read_text().splitlines():
        if not line or line[0] in " #-":
            continue
        requirement = Requirement(line.rstrip(" \\"))
        if requirement.marker is None or requirement.marker.evaluate():
            [spec] = requirement.specifier
            assert spec.operator == "==", line
            found[canonicalize_name(requirement.name)] = Version(spec.version)
    return found


def requirements(*extras: str) -> list[Requirement]:
    listed = PROJECT["dependencies"] + [
        r for e in extras for r in PROJECT["optional-dependencies"][e]
    ]
    return [Requirement(r) for r in listed]


@pytest.mark.parametrize(
    ("lock", "extras"),
    [(LOCK, ("dev", "emulator")), (PRODUCTION_LOCK, ())],
    ids=["make and CI", "production"],
)
def test_each_lock_pins_a_release_every_requirement_accepts(
    lock: Path, extras: tuple[str, ...]
) -> None:
    pinned = pins(lock)
    for requirement in requirements(*extras):
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{lock.name} lacks {name}: run `make lock`"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"{lock.name} pins {name} {pinned[name]}, pyproject.toml asks {requirement}: "
            "run `make lock`"
        )


def test_production_installs_neither_the_emulators_server_nor_the_dev_tools() -> None:
    production, full = pins(PRODUCTION_LOCK), pins(LOCK)
    left_out = {canonicalize_name(r.name) for r in requirements("dev", "emulator")} - {
        canonicalize_name(r.name) for r in requirements()
    }

    assert {"starlette", "uvicorn", "pytest", "pip-audit"} <= left_out
    assert not left_out & production.keys()
    # The same releases as the ones tested: the production lock is a part of the full one.
    assert {name: full.get(name) for name in production} == production


def test_every_locked_release_is_checked_against_its_hash() -> None:
    for lock in (LOCK, PRODUCTION_LOCK):
        entries = [e for e in lock.read_text().split("\n") if e and e[0] not in " #"]
        assert entries
        text = lock.read_text()
        for entry in entries:
            following = text[text.index(entry) + len(entry) :].lstrip()
            assert following.startswith("--hash=sha256:"), f"{lock.name}: {entry} has no hash"


@pytest.mark.parametrize(
    ("name", "vulnerable", "fixed"),
    [
        ("django", "5.2.18", "5.2.19"),  # the last of the 5.2 security releases read
        ("daphne", "4.2.1", "4.2.2"),  # unbounded websocket messages
        ("twisted", "26.4.0", "26.10.0"),  # HTTP/2 rapid reset, six more
        ("starlette", "0.49.0", "0.49.1"),  # FileResponse's Range header
        ("pytest", "9.0.2", "9.0.3"),  # its temporary directory
    ],
)
def test_lower_bounds_leave_out_releases_with_advisories(
    name: str, vulnerable: str, fixed: str
) -> None:
    [requirement] = [r for r in requirements("dev", "emulator") if r.name == name]

    assert not requirement.specifier.contains(vulnerable)
    assert requirement.specifier.contains(fixed)


# ---- the audit's verdict: .ci/audit.py with pip-audit's possible answers --------------------


def audited(tmp_path: Path, stdout: str = "", stderr: str = "", code: int = 0) -> tuple[int, str]:
    """Run .ci/audit.py with a pip_audit that answers ``stdout``, ``stderr`` and ``code``."""
    fake = tmp_path / "pip_audit"
    fake.mkdir(exist_ok=True)
    (fake / "__init__.py").write_text("")
    (fake / "__main__.py").write_text(
        "import os, sys\n"
        "sys.stdout.write(os.environ['FAKE_STDOUT'])\n"
        "sys.stderr.write(os.environ['FAKE_STDERR'])\n"
        "sys.exit(int(os.environ['FAKE_CODE']))\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp_path),
        "FAKE_STDOUT": stdout,
        "FAKE_STDERR": stderr,
        "FAKE_CODE": str(code),
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / ".ci" / "audit.py"), str(LOCK)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout


def report(*releases: Mapping[str, object]) -> str:
    return json.dumps({"dependencies": list(releases), "fixes": []})


CLEAN = {"name": "django", "version": "5.2.19", "vulns": []}


def test_a_known_vulnerability_fails_the_audit(tmp_path: Path) -> None:
    vulnerable = {
        "name": "starlette",
        "version": "0.49.0",
        "vulns": [{"id": "GHSA-7f5h-v6xp-fcq8", "fix_versions": ["0.49.1"], "aliases": []}],
    }

    code, out = audited(tmp_path, report(CLEAN, vulnerable), code=1)

    assert code == 1
    assert "starlette 0.49.0: GHSA-7f5h-v6xp-fcq8, fixed in 0.49.1" in out


def test_releases_checked_and_clean_pass(tmp_path: Path) -> None:
    code, out = audited(tmp_path, report(CLEAN, {**CLEAN, "name": "daphne", "version": "4.2.3"}))

    assert code == 0
    assert "2 locked releases checked, no known vulnerability" in out


def test_an_index_without_advisory_data_is_said_so_and_does_not_fail(tmp_path: Path) -> None:
    # What this machine's index answers: pip-audit skips every release and exits 0.
    skipped = {"name": "django", "skip_reason": "Dependency not found on PyPI"}

    code, out = audited(tmp_path, report(skipped, {**skipped, "name": "daphne"}))

    assert code == 0
    assert UNREACHABLE in out
    assert "no known vulnerability" not in out


def test_no_network_is_said_so_and_does_not_fail(tmp_path: Path) -> None:
    error = (
        "Traceback (most recent call last):\n"
        "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='pypi.org', port=443): "
        "Max retries exceeded\n"
    )

    code, out = audited(tmp_path, stderr=error, code=1)

    assert code == 0
    assert UNREACHABLE in out


def test_any_other_failure_of_pip_audit_fails(tmp_path: Path) -> None:
    code, out = audited(tmp_path, stderr="ERROR: requirements.lock: invalid requirement\n", code=1)

    assert code == 1
    assert "invalid requirement" in out
