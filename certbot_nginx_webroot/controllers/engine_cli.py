"""The container engine's command line (docker or podman), as the container
controller calls it: every call to the engine goes through an ``EngineCli``
(tests hand the controller a fake one with the same three methods).

The engine is driven through its CLI, not its API: the CLI already knows
where its daemon is (DOCKER_HOST, CONTAINER_HOST, podman's own storage),
and both engines' CLIs take the same commands for what is needed here
(``container inspect``, ``exec``)."""
import os
import shutil
import subprocess
from typing import Mapping, Optional, Sequence

from certbot_nginx_webroot.controllers import NginxError

# As for the local nginx: `nginx -t` in the container resolves upstream
# names, and a daemon that does not answer must not stall certbot forever.
COMMAND_TIMEOUT = 60.0
ENGINES = ("docker", "podman")
DOCKER_SOCKET = "/var/run/docker.sock"


class EngineCli:
    """The CLI of one engine: ``engine`` is "docker", "podman" or a path to
    either; ``env`` the environment it runs with (default: this process's)."""

    def __init__(self, engine: str, env: Optional[Mapping[str, str]] = None) -> None:
        self.engine = engine
        self.env = dict(os.environ if env is None else env)
        # What the engine is, whatever its path: decides the socket rules.
        self.kind = "podman" if "podman" in os.path.basename(engine) else "docker"

    def binary(self) -> Optional[str]:
        """The engine's executable, None when it is not installed."""
        return shutil.which(self.engine, path=self.env.get("PATH", os.defpath))

    def socket_problem(self) -> Optional[str]:
        """Why the engine's daemon socket cannot be used from here (one
        clause), None when it can or the engine needs none (podman run as
        root works on its storage directly)."""
        path = self.socket_path()
        if path is None:
            return None
        try:
            os.stat(path)
            # A directory on the way that this user may not search hides the
            # socket as well as a mode that denies it.
            denied = not os.access(path, os.R_OK | os.W_OK)
        except PermissionError:
            denied = True
        except OSError:
            return (f"no {self.kind} daemon socket at {path} (is the daemon running? "
                    f"{'DOCKER_HOST' if self.kind == 'docker' else 'CONTAINER_HOST'} "
                    "names another)")
        if denied:
            return (f"the {self.kind} socket {path} is not readable by uid {os.getuid()} "
                    "(run certbot as root or a member of the socket's group; in a "
                    "container of its own, mount the socket into it)")
        return None

    def socket_path(self) -> Optional[str]:
        """The unix socket the CLI talks to: DOCKER_HOST / CONTAINER_HOST
        when they name one, else docker's default; None for a remote engine
        (tcp://, ssh://) and for podman without CONTAINER_HOST."""
        variable = "DOCKER_HOST" if self.kind == "docker" else "CONTAINER_HOST"
        host = self.env.get(variable)
        if host:
            return host[len("unix://"):] if host.startswith("unix://") else None
        return DOCKER_SOCKET if self.kind == "docker" else None

    def run(self, args: Sequence[str], timeout: float = COMMAND_TIMEOUT) -> \
            subprocess.CompletedProcess:
        """The engine run with args: its exit status and text output."""
        command = [self.binary() or self.engine, *args]
        try:
            return subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, errors="replace", check=False,
                                  timeout=timeout, env=self.env)
        except subprocess.TimeoutExpired as err:
            raise NginxError(f"{' '.join(command[:4])} ... did not finish within "
                             f"{timeout:.0f} s; it was stopped") from err
        except OSError as err:
            raise NginxError(f"cannot run {command[0]}: {err.strerror}") from err


def choose_engine(named: Optional[str], container: str,
                  env: Optional[Mapping[str, str]] = None) -> EngineCli:
    """The engine named; else the one of docker and podman installed here,
    and when both are, the first that has a container named container
    (docker when neither is installed: its error then names what is missing)."""
    if named:
        return EngineCli(named, env)
    installed = [cli for cli in (EngineCli(engine, env) for engine in ENGINES) if cli.binary()]
    if len(installed) > 1:
        for cli in installed:
            if cli.run(["container", "inspect", "--format", "{{.Id}}", container],
                       timeout=15).returncode == 0:
                return cli
    return installed[0] if installed else EngineCli(ENGINES[0], env)
