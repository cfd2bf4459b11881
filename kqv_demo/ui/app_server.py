"""The app as a process of its own: `streamlit run app.py` on a loopback port, with a given database.

Used by the class load test (several servers on one database), the kill -9 drill (the same server
killed and started again on the same port and database) and the UI tests. Each server writes its
output to a log file (appended across restarts), so that a server that does not come up can say why.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from kqv_demo.errors import KqvError
from kqv_demo.settings import PROJECT_ROOT

START_TIMEOUT_S = 180  # a cold start on a busy 2-core machine imports torch and Streamlit: tens of seconds


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class AppServer:
    """One app process on 127.0.0.1:`port` using `database_url`; start, kill (SIGKILL) and start again."""

    def __init__(self, database_url: str, log: Path, port: int | None = None, env: dict[str, str] | None = None):
        self.database_url = database_url
        self.log = log
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/_stcore/stream"
        self._env = env or {}
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        """Start the process (do not wait for it: `wait_healthy`), so that several can start at once."""
        command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(self.port),
                   "--server.address", "127.0.0.1", "--server.headless", "true",
                   "--browser.gatherUsageStats", "false"]
        with self.log.open("a") as output:
            self.process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=output, stderr=subprocess.STDOUT,
                                            env={**os.environ, **self._env, "DATABASE_URL": self.database_url})

    def wait_healthy(self, timeout: float = START_TIMEOUT_S) -> float:
        """Seconds until /_stcore/health answers "ok"; a KqvError with the log's end if it never does."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise KqvError(f"The app server exited with code {code}:\n{tail(self.log)}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as response:
                    if response.read() == b"ok":
                        return time.monotonic() - started
            except OSError:
                time.sleep(0.3)
        raise KqvError(f"The app server did not answer {self.url}/_stcore/health within {timeout:.0f} s:\n"
                       f"{tail(self.log)}")

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would: no clean-up of any kind runs in the server."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        """Terminate politely, then kill after 20 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()


@contextmanager
def own_servers(database_url: str, count: int, scratch: Path,
                env: dict[str, str] | None = None) -> Iterator[list[AppServer]]:
    """`count` app processes on one database, started together; stopped on the way out, always."""
    with ExitStack() as stack:
        servers = [AppServer(database_url, scratch / f"streamlit-{number}.log", env=env) for number in range(count)]
        for server in servers:
            server.start()
            stack.callback(server.stop)
        for server in servers:
            server.wait_healthy()
        yield servers
