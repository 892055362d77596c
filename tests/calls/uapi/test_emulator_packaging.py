"""The emulator's server dependencies (starlette, uvicorn) are an optional extra: a production
dashboard starts without them, and the emulator's entry points say what to install.

Each test runs a fresh interpreter in which importing starlette or uvicorn fails, as it does
where the ``emulator`` extra is not installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
HINT = "pip install 'callboard[emulator]'"

# Makes the interpreter behave as if the extra were not installed, and checks that it does.
WITHOUT_EXTRA = textwrap.dedent(
    """
    import importlib.abc
    import sys

    BLOCKED = {"starlette", "uvicorn"}

    class WithoutEmulatorExtra(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    for name in list(sys.modules):
        if name.partition(".")[0] in BLOCKED:
            del sys.modules[name]
    sys.meta_path.insert(0, WithoutEmulatorExtra())
    try:
        import starlette  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("starlette is still importable")
    """
)


def run_without_extra(code: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="dashboard.settings")
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRA + textwrap.dedent(code)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_dashboard_starts_without_the_emulator_extra() -> None:
    result = run_without_extra(
        """
        import django
        from django.core.management import get_commands, load_command_class

        from dashboard.asgi import application

        import calls.live
        import calls.models
        import calls.services
        import dashboard.urls

        # Loading every command, as `manage.py help <command>` does, imports each module.
        for name, app in get_commands().items():
            if app in ("calls", "dashboard"):
                load_command_class(app, name)

        assert application is not None
        loaded = sorted(n for n in sys.modules if n.partition(".")[0] in BLOCKED)
        assert not loaded, loaded
        print("started")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "started"


def test_the_emulator_command_says_which_extra_to_install() -> None:
    result = run_without_extra(
        """
        import django
        from django.core.management import CommandError, call_command

        django.setup()
        try:
            call_command("uapi_emulator", "--port", "1")
        except CommandError as exc:
            print(exc)
        else:
            raise SystemExit("the command ran without its server")
        """
    )
    assert result.returncode == 0, result.stderr
    assert HINT in result.stdout


def test_python_m_says_which_extra_to_install() -> None:
    result = run_without_extra(
        """
        import runpy

        sys.argv = ["calls.uapi.emulator", "--port", "1"]
        runpy.run_module("calls.uapi.emulator", run_name="__main__", alter_sys=True)
        """
    )
    assert result.returncode == 1
    assert HINT in result.stderr
