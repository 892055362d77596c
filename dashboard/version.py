"""What a page that runs for weeks compares to know the server was upgraded."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from django.conf import settings


@cache
def page_version() -> str:
    """This server's version as pages see it: the package version and a digest of the
    templates and static files, so that any deploy that changes what a page is made of
    changes it (a wallboard that sees another version reloads itself). Read once per process.
    """
    try:
        package = version("callboard")
    except PackageNotFoundError:  # run from a checkout that was never installed
        package = "0"
    digest = hashlib.sha256()
    dirs: list[Any] = [engine.get("DIRS", []) for engine in settings.TEMPLATES]
    roots = [Path(d) for d in [*settings.STATICFILES_DIRS, *(d for ds in dirs for d in ds)]]
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return f"{package}+{digest.hexdigest()[:12]}"
