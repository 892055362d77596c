"""What ``make bench`` adds to the shared launcher (tests/support): a higher open-files limit
for servers holding thousands of sockets, and RSS from /proc."""

from __future__ import annotations

import resource
from pathlib import Path

# The file descriptors a server holding thousands of sockets needs; capped by the hard limit.
WANTED_FDS = 65536


def raise_fd_limit() -> int:
    """Raise this process's open-files limit as far as allowed; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = WANTED_FDS if hard == resource.RLIM_INFINITY else min(WANTED_FDS, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")
