"""Start and stop the lab's processes by pid file, never by name.

A pid file holds the pid and the process's start time (from /proc), so a recycled pid
is never mistaken for ours and `down` only ever signals what `up` started.
"""
import os
import signal
import subprocess
import time
from pathlib import Path


def _start_time(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime) comes after the command name, which may hold spaces: split after ')'.
    return stat.rsplit(")", 1)[1].split()[19]


class Proc:
    """One component's process: its pid file and its log."""

    def __init__(self, state: Path, name: str):
        self.name = name
        self.pidfile = state / "pids" / f"{name}.pid"
        self.logfile = state / "logs" / f"{name}.log"

    def pid(self):
        """The pid if our process is alive, else None (and a stale pid file is removed)."""
        try:
            pid, started = self.pidfile.read_text().split()
            pid = int(pid)
        except (OSError, ValueError):
            return None
        if _start_time(pid) == started and not _is_zombie(pid):
            return pid
        self.pidfile.unlink(missing_ok=True)
        return None

    def start(self, argv, env=None, cwd=None):
        self.pidfile.parent.mkdir(parents=True, exist_ok=True)
        self.logfile.parent.mkdir(parents=True, exist_ok=True)
        with open(self.logfile, "ab") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {self.name}\n".encode())
            log.flush()
            # A session of its own: `down` signals the whole group, and Ctrl-C in the shell
            # that ran `up` does not reach the lab.
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env, cwd=cwd, start_new_session=True)
        self.pidfile.write_text(f"{proc.pid} {_start_time(proc.pid)}\n")
        return proc

    def stop(self, timeout=15.0):
        """SIGTERM the process group, SIGKILL after `timeout`; True if something was stopped."""
        pid = self.pid()
        if pid is None:
            return False
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pid() is not None:
            time.sleep(0.05)
        if self.pid() is not None:
            _signal_group(pid, signal.SIGKILL)
            while self.pid() is not None:
                time.sleep(0.05)
        self.pidfile.unlink(missing_ok=True)
        return True

    def log_tail(self, lines=20):
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _is_zombie(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _signal_group(pid, sig):
    try:
        os.killpg(pid, sig)  # the group leader's pid is the group id (start_new_session)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)
