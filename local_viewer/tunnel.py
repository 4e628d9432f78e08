"""An OpenSSH tunnel to the monitor's loopback port (argument list, never a shell string)."""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import time

_DESTINATION = re.compile(r"^[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+$|^[A-Za-z0-9_.-]+$")


def tunnel_command(destination: str, remote_port: int, local_port: int, ssh: str = "ssh") -> list[str]:
    """The ssh argument list; ValueError for a destination that is not USER@HOST (or could be an option)."""
    if destination.startswith("-") or not _DESTINATION.match(destination):
        raise ValueError(f"--ssh expects USER@HOST or HOST, got {destination!r}")
    for port in (remote_port, local_port):
        if not 0 < port < 65536:
            raise ValueError(f"port out of range: {port}")
    return [ssh, "-N", "-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=30",
            "-L", f"{local_port}:127.0.0.1:{remote_port}", "--", destination]


def open_tunnel(destination: str, remote_port: int, local_port: int, ssh: str = "ssh") -> subprocess.Popen:
    """Start `ssh -N -L local:127.0.0.1:remote destination`; close it with close_tunnel()."""
    return subprocess.Popen(tunnel_command(destination, remote_port, local_port, ssh), stdin=subprocess.DEVNULL)


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 10.0) -> bool:
    """True once 127.0.0.1:port accepts connections; False on timeout or if the ssh process exited first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.1)  # the pause between tries; returns early if ssh gives up
    return False


def close_tunnel(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
