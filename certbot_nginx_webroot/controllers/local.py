"""Run nginx: test its configuration, read its build, and signal its master.

Reload is a SIGHUP to the running master, never a start or restart: a master
the plugin started would live outside the service manager.  The pid file is
not trusted: before every signal the process it names must be the master of
this nginx binary, so a stale pid file never signals an unrelated process.
After a reload nothing sleeps a fixed time; callers poll what nginx serves
(see probes) until it shows the new configuration, with a deadline.
"""
import os
import re
import shutil
import signal
import subprocess
import time
from typing import Any, Dict, Mapping, Optional, Tuple

from certbot_nginx_webroot import parser
from certbot_nginx_webroot.build_info import BuildInfo, parse_build_info
from certbot_nginx_webroot.controllers import NginxError, NotRunning
from certbot_nginx_webroot.problems import NotInstalled

POLL_INTERVAL = 0.02
# `nginx -t` resolves every upstream host name: a resolver that does not
# answer would otherwise stall certbot (and the renewal timer) forever.
COMMAND_TIMEOUT = 60.0
# How nginx titles its master process (ngx_setproctitle), then its command line.
MASTER_TITLE = b"nginx: master process "
# As nginx writes a pid file: decimal digits and a newline.
PID_TEXT = re.compile(rb"[0-9]{1,10}\n?")


class LocalNginx:
    """The ``local`` controller: an nginx process on this machine, the
    binary ``ctl`` (a name on PATH or a path) with the main configuration
    ``conf_path``."""

    def __init__(self, ctl: str, conf_path: str) -> None:
        self.ctl = ctl
        self.conf_path = conf_path
        self.main_conf = conf_path
        self.identity = ("local", ctl, conf_path)
        self._build_info: Optional[BuildInfo] = None
        self._pid_path: Optional[Tuple[Tuple[int, int, int], str]] = None  # (main file's stat, path)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> "LocalNginx":
        return cls(options["ctl"], os.path.join(options["server_root"], "nginx.conf"))

    def check_installed(self) -> None:
        try:
            self.binary()
        except NginxError as err:
            raise NotInstalled(str(err)) from err
        if not os.path.isfile(self.conf_path):
            raise NotInstalled(f"no nginx configuration at {self.conf_path}; "
                               "set --nginx-webroot-server-root")

    def binary(self) -> str:
        found = shutil.which(self.ctl)
        if found is None:
            raise NginxError(f"nginx binary {self.ctl!r} not found; "
                             "set --nginx-webroot-ctl to its path")
        return found

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        command = [self.binary(), *args]
        try:
            return subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, errors="replace", check=False,
                                  timeout=COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired as err:
            raise NginxError(f"{' '.join(command)} did not finish within "
                             f"{COMMAND_TIMEOUT:.0f} s (a DNS resolver that does not "
                             "answer?); it was stopped") from err
        except OSError as err:
            raise NginxError(f"cannot run {command[0]}: {err.strerror}") from err

    def test(self) -> None:
        """``nginx -t``; raises NginxError with nginx's own complaint."""
        proc = self._run("-c", self.conf_path, "-t")
        if proc.returncode != 0:
            raise NginxError("nginx -t failed: " + first_problem(proc.stderr + proc.stdout))

    def build_info(self) -> BuildInfo:
        """``nginx -V``, asked once."""
        if self._build_info is None:
            proc = self._run("-V")
            output = proc.stderr + proc.stdout
            if proc.returncode != 0:
                raise NginxError(f"{self.binary()} -V failed: {first_problem(output)}")
            self._build_info = parse_build_info(output)
        return self._build_info

    def compiled_paths(self) -> Tuple[str, str]:
        """(prefix, pid path) compiled into the binary."""
        info = self.build_info()
        prefix = info.option("prefix") or "/usr/local/nginx"
        return prefix, info.option("pid-path") or os.path.join(prefix, "logs/nginx.pid")

    def prefix(self) -> str:
        return self.compiled_paths()[0]

    def check_running(self) -> None:
        self.master_pid()

    def reach(self, addr: str, port: int) -> Tuple[str, int]:
        return addr, port  # this machine: nginx's own listen addresses

    def local_path(self, path: str) -> str:
        return path

    def nginx_path(self, path: str) -> str:
        return path

    def pid_path(self) -> str:
        """The pid file: the main file's ``pid`` directive, else the compiled
        default.  Only the main file is read, so a broken file elsewhere
        cannot stop a reload; it is read again only when it changed (a
        reload checks the master three times)."""
        try:
            st = os.stat(self.conf_path)
        except OSError as err:
            raise NginxError(f"cannot read {self.conf_path}: {err}") from err
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if self._pid_path is None or self._pid_path[0] != stamp:
            self._pid_path = (stamp, self._read_pid_path())
        return self._pid_path[1]

    def _read_pid_path(self) -> str:
        try:
            main = parser.parse_file(self.conf_path)
        except (OSError, parser.ParseError) as err:
            raise NginxError(f"cannot read {self.conf_path}: {err}") from err
        for node in main.children:
            if node.name == "pid" and node.args:
                if os.path.isabs(node.args[0]):
                    return node.args[0]  # no need to ask the binary
                return os.path.join(self.compiled_paths()[0], node.args[0])
        return self.compiled_paths()[1]

    def master_pid(self) -> int:
        """The pid of this nginx's running master, read from its pid file and
        checked (see master_problem); raises NotRunning otherwise."""
        path = self.pid_path()
        try:
            with open(path, "rb") as f:
                text = f.read(64)
        except OSError as err:
            raise NotRunning(f"nginx is not running (cannot read its pid file {path}: "
                             f"{err.strerror})") from err
        pid = int(text) if PID_TEXT.fullmatch(text) else 0
        if not text:  # `nginx -t` leaves it so when no nginx runs
            raise NotRunning(f"nginx is not running (its pid file {path} is empty)")
        if pid <= 1:  # 0, 1 (init) and garbage are never nginx's master
            raise NotRunning(f"nginx is not running: its pid file {path} holds "
                             f"{text.decode(errors='replace').strip()[:20]!r}, not the pid "
                             "of a master process; nothing was signalled")
        problem = master_problem(pid, self.binary())
        if problem:
            raise NotRunning(f"nginx is not running: pid {pid} from its pid file {path} "
                             f"{problem}; nothing was signalled")
        return pid

    def signal_master(self, signum: int) -> int:
        """Send signum to the checked master; returns its pid.  Where the
        kernel has pidfds, the process checked is the process signalled even
        if it exits and its pid is reused in between."""
        pid = self.master_pid()
        try:
            pidfd = os.pidfd_open(pid)  # type: ignore[attr-defined]
        except (AttributeError, OSError):
            os.kill(pid, signum)
            return pid
        try:
            if self.master_pid() != pid:  # checked again, now that pidfd pins it
                raise NotRunning(f"nginx's master changed while being signalled (pid {pid})")
            signal.pidfd_send_signal(pidfd, signum)  # type: ignore[attr-defined]
        finally:
            os.close(pidfd)
        return pid

    @staticmethod
    def children(pid: int) -> Dict[int, str]:
        """The master's children and their titles (see children_of)."""
        return children_of(pid)

    def reload(self, timeout: float = 30.0) -> None:
        """SIGHUP the master and wait until the new configuration is the only
        one taking connections: new workers have started (the master starts
        them only when the configuration loaded) and every old one has exited
        or is "shutting down" (it closed its listening sockets then)."""
        pid = self.master_pid()
        deadline = time.monotonic() + timeout
        # A master that has just started listens before it forks its
        # workers; measured from then, its first worker would pass for a
        # new one.  So wait for a worker before signalling.
        current = self.children(pid)
        while not any("worker process" in title for title in current.values()) \
                and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL)
            current = self.children(pid)
        before = set(current)
        self.signal_master(signal.SIGHUP)
        while time.monotonic() < deadline:
            now = self.children(pid)
            if set(now) - before and all("shutting down" in now[old]
                                         for old in before if old in now):
                return
            time.sleep(POLL_INTERVAL)
        raise NginxError(f"nginx (pid {pid}) did not start workers with the new "
                         f"configuration within {timeout:.0f} s; see its error log")


def master_problem(pid: int, binary: str) -> Optional[str]:
    """Why pid is not the master process of the nginx binary, None when it
    is: its executable must be the binary (an upgrade that replaced the file
    leaves "(deleted)" on it), or one that the binary, a wrapper script,
    names (e.g. a dynamic loader); and it must bear nginx's master title.
    nginx writes its pid file just before it retitles itself, so a process
    of this binary gets a moment to do so."""
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except FileNotFoundError:
        return "is not a running process (a stale pid file)"
    except OSError as err:  # EACCES: another user's process
        return f"cannot be inspected ({err.strerror})"
    exe = exe[:-len(" (deleted)")] if exe.endswith(" (deleted)") else exe
    wrapped = _script_runs(binary, exe)
    ours = wrapped or os.path.realpath(binary) == os.path.realpath(exe)
    deadline = time.monotonic() + (1.0 if ours else 0)
    while True:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                title = f.read(4096)
        except OSError:
            return "is not a running process (a stale pid file)"
        # Run through a loader (a wrapper script), nginx retitles its own argv,
        # which follows the loader's: the kernel may show only the loader's
        # path for the master, but its workers show their title.
        titled = title.startswith(MASTER_TITLE) or (wrapped and any(
            "nginx: worker process" in child for child in children_of(pid).values()))
        if titled or time.monotonic() >= deadline:
            break
        time.sleep(POLL_INTERVAL)
    if not titled:
        shown = title.replace(b"\0", b" ").decode(errors="replace").strip()[:60]
        return f"is not an nginx master process ({shown or 'no command line'!r})"
    if not ours:
        return f"is the master of {exe}, not of {binary}"
    return None


def _script_runs(path: str, exe: str) -> bool:
    """Whether path is a script (#!) that names exe (through any symlink),
    as the executable it runs."""
    try:
        with open(path, "rb") as f:
            text = f.read(65536)
    except OSError:
        return False
    if not text.startswith(b"#!"):
        return False
    named = re.findall(rb"/[^\s\"';]+", text)
    return any(os.path.realpath(os.fsdecode(name)) == exe for name in named)


# What nginx puts before a logged message: "2026/11/29 08:15:13 [emerg] 27002#27002: ".
_LOG_PREFIX = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (\[\w+\]) \d+#\d+: ")


def first_problem(output: str) -> str:
    for line in output.splitlines():
        if "[emerg]" in line or "[crit]" in line or "[alert]" in line or "[error]" in line:
            return _LOG_PREFIX.sub(r"\1 ", line.strip())
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[0] if lines else "no output"


def children_of(pid: int) -> Dict[int, str]:
    """The live children of pid (read from /proc): pid -> process title."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid and fields[0] != b"Z":
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    found[int(entry)] = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
    return found
