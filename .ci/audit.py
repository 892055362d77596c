"""Known vulnerabilities in the locked releases: pip-audit on a lock file, with a verdict that
says whether anything was checked.

pip-audit reads PyPI's advisory data (the JSON of each release, which carries its known
vulnerabilities) through the package index it reaches. Where that data cannot be had (a
mirror that serves packages but not the JSON, no network), pip-audit skips every release and
still exits 0 with "No known vulnerabilities found". The decision here:

- advisories reached and a locked release has one: print each, exit 1 (CI fails);
- advisories reached, nothing found: one line saying how many releases were checked, exit 0;
- advisories unreachable (every release skipped, a network error, no answer in time):
  print "pip-audit: advisory data unreachable, not checked" and exit 0. CI's verdict on the
  code does not hang on a third party being reachable from the machine that runs it; the line
  keeps the gap visible instead of passing silently;
- pip-audit failing any other way (a lock it cannot read): its output, exit 1.

Usage: python .ci/audit.py requirements.lock
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

UNREACHABLE = "pip-audit: advisory data unreachable, not checked"
# About 90 releases, one request each: seconds when the data answers.
DEADLINE = 300
# How requests reports a network failure, in the traceback pip-audit leaves on stderr.
NETWORK_ERRORS = ("requests.exceptions.", "Max retries exceeded", "ConnectionError", "Timeout")


def audit(lock: str) -> int:
    command = [
        sys.executable,
        "-m",
        "pip_audit",
        "--requirement",
        lock,
        # The lock pins and hashes every release: nothing to resolve, nothing to install.
        "--disable-pip",
        "--vulnerability-service",
        "pypi",
        "--format",
        "json",
        "--progress-spinner",
        "off",
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        print(f"{UNREACHABLE} (no answer within {DEADLINE} s)")
        return 0
    return verdict(done.returncode, done.stdout, done.stderr)


def verdict(returncode: int, stdout: str, stderr: str) -> int:
    """What CI prints and exits with, from pip-audit's exit code and output."""
    try:
        report: dict[str, Any] = json.loads(stdout)
    except ValueError:
        last = (stderr.strip().splitlines() or ["no output"])[-1]
        if any(sign in stderr for sign in NETWORK_ERRORS):
            print(f"{UNREACHABLE} ({last})")
            return 0
        print(f"pip-audit failed (exit {returncode}):\n{stderr}")
        return 1
    releases = report.get("dependencies", [])
    skipped = [r for r in releases if r.get("skip_reason")]
    checked = [r for r in releases if not r.get("skip_reason")]
    vulnerable = [r for r in checked if r.get("vulns")]
    for release in vulnerable:
        for vuln in release["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed release yet"
            aliases = ", ".join(vuln.get("aliases") or [])
            print(
                f"pip-audit: {release['name']} {release['version']}: {vuln['id']}"
                f"{f' ({aliases})' if aliases else ''}, fixed in {fixed}"
            )
    if vulnerable:
        print(f"pip-audit: {len(vulnerable)} locked release(s) with known vulnerabilities")
        return 1
    if releases and not checked:
        print(f"{UNREACHABLE} (the advisory service knew none of {len(skipped)} releases)")
        return 0
    if returncode != 0:
        print(f"pip-audit failed (exit {returncode}):\n{stderr}")
        return 1
    if skipped:
        names = ", ".join(sorted(r["name"] for r in skipped))
        print(f"pip-audit: not checked (unknown to the advisory service): {names}")
    print(f"pip-audit: {len(checked)} locked releases checked, no known vulnerability")
    return 0


if __name__ == "__main__":
    sys.exit(audit(sys.argv[1] if len(sys.argv) > 1 else "requirements.lock"))
