"""The ``container`` controller: nginx in a Docker or Podman container,
driven through the engine's command line.

The container is named as compose names it and found by that name on every
run (a container recreated with a new id still matches); within a run the
id the name had when first inspected is used for every command, so a
container recreated mid-run is an error, never a different nginx.  Nothing
here starts, stops or restarts a container: a reload is a SIGHUP to nginx's
master inside it, found and checked in the container's own /proc
(container_procs), whether nginx is the container's first process or a
child of an entrypoint script.  Paths go through the container's mounts
(container_inspect): nginx's configuration names paths as the container
sees them; this machine opens them where the mounts' sources are.
"""
import json
import os
import re
import time
from typing import Any, Dict, List, Mapping, Optional, Tuple

from certbot_nginx_webroot.build_info import BuildInfo, parse_build_info
from certbot_nginx_webroot.controllers import NginxError, NotRunning
from certbot_nginx_webroot.controllers import container_inspect as inspect
from certbot_nginx_webroot.controllers import container_procs as procs
from certbot_nginx_webroot.controllers.engine_cli import choose_engine
from certbot_nginx_webroot.controllers.local import first_problem
from certbot_nginx_webroot.problems import NotInstalled, Problem

POLL_INTERVAL = 0.05


class ContainerNginx:
    """nginx in the container ``name``, driven through ``cli`` (an
    EngineCli, or anything with its binary, socket_problem and run)."""

    def __init__(self, name: str, cli: Any) -> None:
        self.name = name
        self.cli = cli
        self.identity = ("container", cli.kind, name)
        self._info: Optional[Dict[str, Any]] = None
        self._build_info: Optional[BuildInfo] = None

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> "ContainerNginx":
        name = options["container"]
        return cls(name, choose_engine(options.get("engine"), name))

    # -- the container -------------------------------------------------

    def _where(self) -> str:
        return f"{self.cli.kind} container {self.name!r}"

    def info(self) -> Dict[str, Any]:
        """The container's inspect data, read once per run; raises
        NotInstalled with one line when the engine or container cannot be
        used."""
        if self._info is None:
            self._info = self._inspect()
        return self._info

    def _inspect(self) -> Dict[str, Any]:
        if not self.cli.binary():
            raise NotInstalled(f"container engine {self.cli.engine!r} not found on PATH "
                               "(install docker or podman, or name one with the engine option)")
        socket = self.cli.socket_problem()
        if socket:
            raise NotInstalled(f"cannot reach nginx's {self.cli.kind} container "
                               f"{self.name!r}: {socket}")
        proc = self.cli.run(["container", "inspect", self.name])
        found = _inspect_output(proc.stdout) if proc.returncode == 0 else []
        # inspect also takes an id or its prefix: only the container by this name counts.
        found = [c for c in found if inspect.name_of(c) == self.name]
        if not found:
            complaint = first_problem(proc.stderr) if proc.returncode != 0 else ""
            # Both engines say "no such container" (docker: "No such
            # container: NAME"; podman: "no such container NAME"); anything
            # else is the engine failing (daemon down, permission denied).
            if complaint and "no such container" not in complaint.lower():
                raise NotInstalled(f"cannot ask {self.cli.kind} about nginx's container "
                                   f"{self.name!r}: {complaint}")
            raise NotInstalled(f"no {self.cli.kind} container is named {self.name!r} "
                               + self._name_hint())
        return found[0]

    def _name_hint(self) -> str:
        """What to name instead: the containers of the compose service so
        named (compose names them PROJECT-SERVICE-N), else where to look."""
        proc = self.cli.run(["ps", "-a", "--filter",
                             f"label=com.docker.compose.service={self.name}",
                             "--format", "{{.Names}}"])
        names = sorted(proc.stdout.split()) if proc.returncode == 0 else []
        if names:
            return (f"(compose's service {self.name!r} runs as "
                    f"{', '.join(repr(n) for n in names)}: name the container)")
        return f"(`{self.cli.kind} ps -a` lists their names)"

    def check_installed(self) -> None:
        problem = inspect.state_problem(self.info())
        if problem:
            raise NotInstalled(f"{self._where()} {problem}")

    def _id(self) -> str:
        return self.info()["Id"]

    def exec(self, *args: str) -> Any:
        """args run in the container (by the id inspected first)."""
        self.check_installed()
        proc = self.cli.run(["exec", self._id(), *args])
        # The engine's own failures (125: the engine; 126, 127: the command
        # cannot be run there); nginx and the scripts never exit so.
        if proc.returncode in (125, 126, 127):
            raise NginxError(f"cannot run {args[0]} in {self._where()}: "
                             f"{first_problem(proc.stderr)}")
        return proc

    # -- nginx ---------------------------------------------------------

    def test(self) -> None:
        """``nginx -t`` in the container, with the -p and -c of the running
        master when it runs (else nginx's compiled defaults)."""
        proc = self.exec("nginx", *self._conf_args(), "-t")
        if proc.returncode != 0:
            raise NginxError(f"nginx -t failed in {self._where()}: "
                             + first_problem(proc.stderr + proc.stdout))

    def build_info(self) -> BuildInfo:
        if self._build_info is None:
            proc = self.exec("nginx", "-V")
            output = proc.stderr + proc.stdout
            if proc.returncode != 0:
                raise NginxError(f"nginx -V failed in {self._where()}: "
                                 f"{first_problem(output)}")
            self._build_info = parse_build_info(output)
        return self._build_info

    def prefix(self) -> str:
        return self.build_info().option("prefix") or "/usr/local/nginx"

    def conf_path(self) -> str:
        """nginx.conf as the container sees it: the running master's -c,
        else the compiled one (relative ones from the prefix)."""
        args = self._conf_args()
        path = args[args.index("-c") + 1] if "-c" in args else \
            (self.build_info().option("conf-path") or "conf/nginx.conf")
        return path if path.startswith("/") else os.path.join(self.prefix(), path)

    def config_dump(self) -> Dict[str, str]:
        """Every file nginx loads, as ``nginx -T`` in the container prints
        them: path as the container sees it -> text.  For the files that
        live only in the image (the official image's nginx.conf, which no
        compose recipe mounts): files on a volume are read, and edited,
        through local_path."""
        proc = self.exec("nginx", *self._conf_args(), "-T")
        if proc.returncode != 0:
            raise NginxError(f"nginx -T failed in {self._where()}: "
                             + first_problem(proc.stderr + proc.stdout))
        return split_dump(proc.stdout)

    @property
    def main_conf(self) -> str:
        """nginx.conf as this machine opens it: through a mount; raises a
        Problem naming the mount to add when it is only in the image."""
        return self.local_path(self.conf_path())

    def _conf_args(self) -> List[str]:
        try:
            return procs.conf_args(self._master()[0].title)
        except NotRunning:
            return []

    # -- the master ----------------------------------------------------

    def _foreign_proc(self) -> NginxError:
        return NginxError(f"{self._where()}: /proc there does not show the container's own "
                          "processes (an engine run under chroot?); nothing was signalled")

    def _ps(self) -> Tuple[Optional[str], Dict[int, procs.Proc]]:
        proc = self.exec("sh", "-c", procs.PS_SCRIPT)
        if proc.returncode == procs.FOREIGN_PROC:
            raise self._foreign_proc()
        if proc.returncode != 0:
            raise NginxError(f"cannot list the processes in {self._where()}: "
                             f"{first_problem(proc.stderr)}")
        return procs.parse_ps(proc.stdout)

    def _master(self) -> Tuple[procs.Proc, Dict[int, procs.Proc]]:
        state = inspect.state_problem(self.info())
        if state:  # check_installed says so too; here it is nginx not running
            raise NotRunning(f"nginx is not running: {self._where()} {state}; "
                             "nothing was signalled")
        nginx, found = self._ps()
        master, why = procs.find_master(nginx, found)
        if master is None:
            raise NotRunning(f"nginx is not running in {self._where()}: {why}; "
                             "nothing was signalled")
        return master, found

    def check_running(self) -> None:
        self._master()

    def signal_master(self, master: procs.Proc, signame: str) -> None:
        """signame to the master checked, if it still is that process."""
        proc = self.exec("sh", "-c", procs.SIGNAL_SCRIPT, "sh", str(master.pid),
                         master.start, signame)
        if proc.returncode == procs.FOREIGN_PROC:
            raise self._foreign_proc()
        if proc.returncode == procs.CHANGED:
            raise NotRunning(f"nginx's master in {self._where()} changed while being "
                             f"signalled (pid {master.pid}); nothing was signalled")
        if proc.returncode != 0:
            raise NginxError(f"cannot signal nginx's master in {self._where()}: "
                             f"{first_problem(proc.stderr)}")

    def reload(self, timeout: float = 30.0) -> None:
        """SIGHUP to the master in the container, then wait until the new
        configuration is the only one taking connections (as
        LocalNginx.reload: new workers, every old one gone or "shutting
        down"), reading the container's /proc."""
        deadline = time.monotonic() + timeout
        master, found = self._master()
        current = procs.children(found, master.pid)
        # A master that has just started has no worker yet: its first would
        # pass for a new one.
        while not any("worker process" in t for t in current.values()) \
                and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL)
            current = procs.children(self._ps()[1], master.pid)
        before = set(current)
        self.signal_master(master, "HUP")
        while time.monotonic() < deadline:
            now = procs.children(self._ps()[1], master.pid)
            if set(now) - before and all("shutting down" in now[old]
                                         for old in before if old in now):
                return
            time.sleep(POLL_INTERVAL)
        raise NginxError(f"nginx in {self._where()} (pid {master.pid} there) did not start "
                         f"workers with the new configuration within {timeout:.0f} s; "
                         "see the container's log")

    # -- where things are ------------------------------------------------

    def reach(self, addr: str, port: int) -> Tuple[str, int]:
        found = inspect.reach(self.info(), addr, port)
        if found is None:
            raise Problem(f"nginx in {self._where()} listens on port {port}, which the "
                          f"container does not publish: add -p {port}:{port} "
                          f"(compose: ports: - \"{port}:{port}\")")
        return found

    def local_path(self, path: str) -> str:
        found = inspect.host_file(self.info(), path)
        if found is None:
            directory = inspect.mount_to_add(path, is_dir=path.endswith("/"))
            raise Problem(f"{path} (or a link on the way) is inside the image of "
                          f"{self._where()}, on no volume this machine can reach: mount it, "
                          f"{inspect.mount_advice(directory)}", file=path)
        return found

    def nginx_path(self, path: str) -> str:
        found = inspect.container_path(self.info(), path)
        if found is None:
            directory = inspect.mount_to_add(path, is_dir=os.path.isdir(path))
            raise Problem(f"{path} is not mounted into {self._where()}, so nginx there "
                          f"cannot read it: add {inspect.mount_advice(directory)}", file=path)
        return found


# How `nginx -T` heads each file it prints (ngx_conf_parse's dump).
_DUMP_HEADER = re.compile(r"^# configuration file (/.+):\n", re.M)


def split_dump(text: str) -> Dict[str, str]:
    """The files of an ``nginx -T`` output: path -> text.  nginx writes a
    newline after each file's bytes (ngx_dump_config in nginx.c), which is
    dropped: the text is the file's."""
    parts = _DUMP_HEADER.split(text)
    return {path: body[:-1] if body.endswith("\n") else body
            for path, body in zip(parts[1::2], parts[2::2])}


def _inspect_output(text: str) -> List[Dict[str, Any]]:
    try:
        found = json.loads(text)
    except ValueError:
        return []
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []
