"""The system's OpenSSH client as a runner of commands on ssh destinations
(the transport of the ``ssh`` controller, its remote files and its
challenge store).

A destination is what the user would type after ``ssh``: ``user@host`` or
a Host of the user's own configuration, whose keys, agent and options
apply.  Ours come first on the command line, where ssh takes the first
value of an option: a host key must be known (``StrictHostKeyChecking=yes``:
an unknown or changed key is refused by ssh before anything runs), and
nothing prompts (``BatchMode``: certbot runs from a timer).  A command is an
argv, quoted here for the remote user's shell.
"""
import os
import shlex
import shutil
import subprocess
import tempfile
from typing import Any, Dict, List, Optional, Sequence

from certbot_nginx_webroot.controllers import NginxError

# Before any option of the caller's or the user's configuration: for ssh the
# first value given for an option is the one used.  BatchMode: never a
# password or host key prompt (certbot runs from a timer).
SSH_OPTIONS = ("-T", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes")
COMMAND_TIMEOUT = 60.0
SSH_FAILED = 255  # ssh's own exit status: no connection, refused host key, ...
MASTER_IDLE = 60  # seconds a shared connection outlives its last use


class SshError(NginxError):
    """ssh itself failed: no connection, a refused host key, a timeout."""


class OpenSsh:
    """Runs commands on ssh destinations with the system's ssh client.
    options are put after ours (e.g. ``["-F", path]`` for a configuration
    file of its own, as the tests do).

    With share_connections, the first command to a destination starts a
    master connection (ssh's ControlMaster, its socket in a private
    directory of this runner) and later ones ride on it: one key exchange
    and authentication per node per run, not one per command.  close()
    ends the masters; ControlPersist ends them anyway after MASTER_IDLE
    seconds unused (a run that was killed)."""

    def __init__(self, ssh: str = "ssh", options: Sequence[str] = (),
                 timeout: float = COMMAND_TIMEOUT, share_connections: bool = False) -> None:
        self.ssh = ssh
        self.options = list(options)
        self.timeout = timeout
        self.share_connections = share_connections
        self._control_dir: Optional[str] = None
        self._paths: Dict[str, str] = {}
        self._masters: List[str] = []

    def __enter__(self) -> "OpenSsh":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def argv(self, destination: str, command: Sequence[str]) -> List[str]:
        return [self.ssh, *SSH_OPTIONS, *self._shared(destination), *self.options, "--",
                destination, remote_command(command)]

    def run(self, destination: str, command: Sequence[str],
            stdin: Optional[bytes] = None) -> subprocess.CompletedProcess:
        """command (an argv) on destination; stdout and stderr as bytes.
        Raises SshError when ssh itself fails."""
        return self._ssh(destination, self.argv(destination, command), stdin)

    def _ssh(self, destination: str, argv: List[str],
             stdin: Optional[bytes] = None) -> subprocess.CompletedProcess:
        try:
            proc = subprocess.run(argv, input=stdin if stdin is not None else b"",
                                  capture_output=True, timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired as err:
            raise SshError(f"ssh {destination}: no answer within {self.timeout:.0f} s; "
                           "it was stopped") from err
        except OSError as err:
            raise SshError(f"cannot run {self.ssh}: {err.strerror}") from err
        if proc.returncode == SSH_FAILED:
            raise SshError(f"ssh {destination} failed: {last_line(proc.stderr)}")
        return proc

    def _control_path(self, destination: str) -> str:
        """The master's socket: in a directory only we can enter (mkdtemp),
        named by number (a socket path has at most 107 bytes)."""
        if destination not in self._paths:
            if self._control_dir is None:
                self._control_dir = tempfile.mkdtemp(prefix="nginx-webroot-ssh-")
            self._paths[destination] = os.path.join(self._control_dir, str(len(self._paths)))
        return self._paths[destination]

    def _shared(self, destination: str) -> List[str]:
        """The options that put a command on destination's master
        connection, started here on first use."""
        if not self.share_connections:
            return []
        path = self._control_path(destination)
        if destination not in self._masters:
            # -f: into the background once authenticated, its output
            # detached (a master holding our pipes would hang run()).
            with tempfile.TemporaryFile() as err:
                argv = [self.ssh, *SSH_OPTIONS, "-o", "ControlMaster=yes", "-o",
                        f"ControlPath={path}", "-o", f"ControlPersist={MASTER_IDLE}",
                        *self.options, "-N", "-f", "--", destination]
                try:
                    code = subprocess.run(argv, stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=err,
                                          timeout=self.timeout).returncode
                except subprocess.TimeoutExpired as timeout:
                    raise SshError(f"ssh {destination}: no answer within "
                                   f"{self.timeout:.0f} s; it was stopped") from timeout
                err.seek(0)
                if code != 0:
                    raise SshError(f"ssh {destination} failed: {last_line(err.read())}")
            self._masters.append(destination)
        return ["-o", "ControlMaster=no", "-o", f"ControlPath={path}"]

    def close(self) -> None:
        """End the master connections; nothing of this runner stays."""
        for destination in self._masters:
            subprocess.run([self.ssh, *self.options, "-o",
                            f"ControlPath={self._control_path(destination)}", "-O", "exit",
                            "--", destination], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=self.timeout)
        self._masters = []
        self._paths = {}
        if self._control_dir is not None:
            shutil.rmtree(self._control_dir, ignore_errors=True)
            self._control_dir = None

    def config(self, destination: str) -> Dict[str, str]:
        """What ssh would use for destination (``ssh -G``), lower-case keys."""
        proc = subprocess.run([self.ssh, *SSH_OPTIONS, *self.options, "-G", "--",
                               destination], capture_output=True, timeout=self.timeout)
        if proc.returncode != 0:
            raise SshError(f"ssh -G {destination} failed: {last_line(proc.stderr)}")
        return parse_ssh_config(proc.stdout.decode(errors="replace"))


def remote_command(argv: Sequence[str]) -> str:
    """argv as one command line for the remote user's shell (ssh sends a
    string, which that shell splits again)."""
    return " ".join(shlex.quote(arg) for arg in argv)


def parse_ssh_config(text: str) -> Dict[str, str]:
    """``ssh -G`` output: "key value" lines; the first value of a key."""
    found: Dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key:
            found.setdefault(key.lower(), value.strip())
    return found


def last_line(stderr: bytes) -> str:
    """The last line of a command's error output: ssh's or the remote
    command's own complaint."""
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines()
             if line.strip()]
    return lines[-1] if lines else "no error message"
