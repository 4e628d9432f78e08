"""An OpenSSH tunnel to the monitor's loopback port (argument list, never a shell string).

BatchMode=yes: ssh never prompts (a password or host-key question would hang the viewer or mix into its
output); an unknown host key or a refused login ends ssh, and ssh_failure() says what to do."""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import time
from dataclasses import dataclass

_HOST = r"[A-Za-z0-9_.-]+(@[A-Za-z0-9_.-]+)?"
_DESTINATION = re.compile(_HOST)
_JUMP = re.compile(rf"{_HOST}(:\d+)?(,{_HOST}(:\d+)?)*")
_OPTION = re.compile(r"[A-Za-z]+=[^\s]+")


@dataclass(frozen=True)
class SshOptions:
    """How to reach the host: port, identity file, jump host(s), ssh config file, extra -o options."""

    port: int | None = None
    identity: str | None = None
    jump: str | None = None
    config: str | None = None
    options: tuple[str, ...] = ()
    accept_new_host_key: bool = False

    def arguments(self) -> list[str]:
        args = ["-o", "BatchMode=yes"]
        if self.accept_new_host_key:
            args += ["-o", "StrictHostKeyChecking=accept-new"]
        if self.config:
            args += ["-F", self.config]
        if self.port is not None:
            if not 0 < self.port < 65536:
                raise ValueError(f"--ssh-port out of range: {self.port}")
            args += ["-p", str(self.port)]
        if self.identity:
            args += ["-i", self.identity]
        if self.jump:
            if not _JUMP.fullmatch(self.jump):
                raise ValueError(f"--jump expects [USER@]HOST[:PORT][,...], got {self.jump!r}")
            args += ["-J", self.jump]
        for option in self.options:
            if not _OPTION.fullmatch(option):
                raise ValueError(f"--ssh-option expects KEY=VALUE, got {option!r}")
            args += ["-o", option]
        return args


def tunnel_command(destination: str, remote_port: int, local_port: int, ssh: str = "ssh",
                   options: SshOptions | None = None) -> list[str]:
    """The ssh argument list; ValueError for a destination that is not [USER@]HOST (or could be an option).

    HOST may be an alias of ~/.ssh/config (HostName, Port, User, ProxyJump there all apply)."""
    if destination.startswith("-") or not _DESTINATION.fullmatch(destination):
        raise ValueError(f"--ssh expects USER@HOST or HOST, got {destination!r}")
    for port in (remote_port, local_port):
        if not 0 < port < 65536:
            raise ValueError(f"port out of range: {port}")
    return [ssh, "-N", *(options or SshOptions()).arguments(), "-o", "ExitOnForwardFailure=yes",
            "-o", "ServerAliveInterval=30", "-L", f"{local_port}:127.0.0.1:{remote_port}", "--", destination]


def open_tunnel(destination: str, remote_port: int, local_port: int, ssh: str = "ssh",
                options: SshOptions | None = None) -> subprocess.Popen[str]:
    """Start `ssh -N -L local:127.0.0.1:remote destination`; close it with close_tunnel()."""
    return subprocess.Popen(tunnel_command(destination, remote_port, local_port, ssh, options),
                            stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def ssh_failure(proc: subprocess.Popen[str], destination: str) -> str:
    """Why an ssh that exited failed, in words with the next step (call only once it has exited)."""
    text = (proc.stderr.read() if proc.stderr is not None else "") or ""
    last = " ".join(line for line in text.strip().splitlines()[-2:]).strip()
    if "Host key verification failed" in text or "No ED25519 host key is known" in text \
            or "host key for" in text.lower():
        return (f"the host key of {destination} is not known (or changed): connect once with plain ssh to check "
                "and accept its fingerprint, or pass --accept-new-host-key to trust it on first use")
    if "Permission denied" in text:
        return (f"login to {destination} refused (no password prompts in BatchMode): use a key with --identity "
                "or ssh-agent")
    if "Could not resolve hostname" in text:
        return f"unknown host {destination}: check the name or your ssh config alias ({last})"
    return f"ssh exited with code {proc.returncode}: {last or 'no message'}"


def wait_for_port(port: int, proc: subprocess.Popen[str], timeout: float = 10.0) -> bool:
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


def close_tunnel(proc: subprocess.Popen[str], timeout: float = 5.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stderr is not None:
        proc.stderr.close()
