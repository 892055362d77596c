"""Processes a test or a bench run starts: each logs to its own file, and every exit path
stops all of them."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.waiting import wait_for


@dataclass
class Processes:
    """The processes started so far, by name, with their logs in ``log_dir``.

    ``preexec_fn`` runs in each child before it starts (``make bench`` raises the open-files
    limit there).
    """

    log_dir: Path
    preexec_fn: Callable[[], object] | None = None
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(
        self, name: str, argv: Sequence[str], env: dict[str, str], *, cwd: Path
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` as ``name``, output to ``<log_dir>/<name>.log``; returns it."""
        with (self.log_dir / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own session: a Ctrl-C on the terminal reaches us, and we stop it ourselves.
                start_new_session=True,
                preexec_fn=self.preexec_fn,
            )
        self.running[name] = proc
        return proc

    def wait_ready(self, name: str, ready: Callable[[], object], within: float) -> None:
        """Wait until ``ready()`` is truthy while the process ``name`` runs.

        Raises RuntimeError, with the end of its log, when it exits or is not ready in time.
        """
        proc = self.running[name]

        def check() -> object:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {proc.returncode} while starting:\n{self.log_tail(name)}"
                )
            return ready()

        try:
            wait_for(check, within, f"{name} to be ready", interval=0.1)
        except AssertionError as exc:
            raise RuntimeError(f"{exc}:\n{self.log_tail(name)}") from None

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        """Send ``sig`` to ``name`` and wait for it; kill it if it outlives ``timeout``."""
        proc = self.running.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def stop_all(self) -> None:
        # Clients and watchers first, then the servers they talk to.
        for name in reversed(list(self.running)):
            self.stop(name)

    def check_alive(self) -> None:
        """Raises RuntimeError, with its log's end, for the first process that exited."""
        for name, proc in self.running.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")

    def log(self, name: str) -> str:
        """Everything ``name`` wrote so far ("" before it started)."""
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log_tail(self, name: str, lines: int = 20) -> str:
        return "\n".join(self.log(name).splitlines()[-lines:])
