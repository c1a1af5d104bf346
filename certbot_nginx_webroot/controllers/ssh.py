"""The ``ssh`` controller: an nginx on another machine (a node behind a load
balancer), driven with the system's OpenSSH client.

The node is named as an ssh destination (``user@host``, or a Host of the
user's own ssh configuration): the user's keys, agent and configuration
apply, and nothing of ours runs or listens on the node, which needs only
POSIX sh, coreutils and /proc.  Every connection insists on a known host
key (``StrictHostKeyChecking=yes``, given before anything the user's
configuration says, so it wins): an unknown or changed key is refused, by
ssh, before any command runs on the node.

Reload is checked as the local controller checks it (local.py), with the
node's /proc read over ssh: the pid file names a process whose executable
is the node's nginx binary and which bears nginx's master title; it gets
SIGHUP (checked again in the same remote shell, just before the kill), and
the reload is over when new workers run and every old one is shutting down.
"""
import re
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Set, Tuple

from certbot_nginx_webroot import parser
from certbot_nginx_webroot.build_info import BuildInfo, parse_build_info
from certbot_nginx_webroot.controllers import NginxError, NotRunning
from certbot_nginx_webroot.controllers.local import (
    MASTER_TITLE, PID_TEXT, first_problem)
from certbot_nginx_webroot.controllers.openssh import OpenSsh, SshError, last_line
from certbot_nginx_webroot.controllers.remote_files import RemoteFileError, RemoteFiles
from certbot_nginx_webroot.problems import NotInstalled

POLL_INTERVAL = 0.05

# $1 the nginx binary (a name on the node's PATH, or a path), $2 a pid.
PROBE_SCRIPT = r"""b=$(command -v "$1" 2>/dev/null) && b=$(readlink -f "$b")
printf 'binary %s\n' "$b"
[ -d "/proc/$2" ] || { echo gone; exit 0; }
if e=$(readlink "/proc/$2/exe"); then printf 'exe %s\n' "$e"; else echo exe-unreadable; fi
printf 'title %s\n' "$(tr '\0' ' ' < "/proc/$2/cmdline" 2>/dev/null)"
for f in $(grep -l "^PPid:[[:space:]]*$2\$" /proc/[0-9]*/status 2>/dev/null); do
    grep -q '^State:[[:space:]]*Z' "$f" 2>/dev/null && continue
    d=${f%/status}
    printf 'child %s %s\n' "${d#/proc/}" "$(tr '\0' ' ' < "$d/cmdline" 2>/dev/null)"
done
"""

# $1 the master's pid, $2 its executable as probed: signalled only if it is
# still that process, with nginx's master title.
SIGNAL_SCRIPT = r"""[ "$(readlink "/proc/$1/exe" 2>/dev/null)" = "$2" ] || {
    echo "pid $1 is no longer nginx's master" >&2; exit 3; }
case "$(tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null)" in
    "nginx: master process "*) ;;
    *) echo "pid $1 is no longer nginx's master" >&2; exit 3 ;;
esac
exec kill -HUP "$1"
"""

INSTALLED_SCRIPT = r"""command -v "$1" >/dev/null 2>&1 || {
    echo "no nginx binary $1" >&2; exit 3; }
[ -f "$2" ] || { echo "no nginx configuration at $2" >&2; exit 3; }
"""


@dataclass
class ProcFacts:
    """What PROBE_SCRIPT saw of a pid on the node."""
    binary: str = ""      # the nginx binary, resolved on the node; "" if none
    running: bool = True  # False: no such process
    exe: Optional[str] = None  # None: its executable could not be read
    title: str = ""
    children: Dict[int, str] = field(default_factory=dict)  # pid -> title


def parse_probe(text: str) -> ProcFacts:
    facts = ProcFacts()
    for line in text.splitlines():
        word, _, rest = line.partition(" ")
        if word == "binary":
            facts.binary = rest
        elif word == "gone":
            facts.running = False
        elif word == "exe":
            facts.exe = rest
        elif word == "title":
            facts.title = rest
        elif word == "child":
            pid, _, title = rest.partition(" ")
            if pid.isdigit():
                facts.children[int(pid)] = title
    return facts


def master_problem(facts: ProcFacts) -> Optional[str]:
    """Why the probed process is not the master of the node's nginx binary
    (the rule of local.master_problem, without the wrapper scripts), None
    when it is."""
    if not facts.running:
        return "is not a running process (a stale pid file)"
    if facts.exe is None:
        return "cannot be inspected (its /proc/PID/exe is unreadable: ssh as root?)"
    exe = facts.exe[:-len(" (deleted)")] if facts.exe.endswith(" (deleted)") else facts.exe
    if not facts.title.startswith(MASTER_TITLE.decode()):
        shown = facts.title.strip()[:60] or "no command line"
        return f"is not an nginx master process ({shown!r})"
    if exe != facts.binary:
        return f"is the master of {exe}, not of {facts.binary or 'the nginx binary'}"
    return None


def has_worker(children: Mapping[int, str]) -> bool:
    return any("nginx: worker process" in title for title in children.values())


def reload_done(before: Set[int], now: Mapping[int, str]) -> bool:
    """Whether only the new configuration takes connections: a new worker
    runs, and every old child still there is shutting down."""
    return bool(set(now) - before) and all(
        "shutting down" in now[old] for old in before if old in now)


def address_of(config: Mapping[str, str]) -> str:
    """The node's host (``ssh -G``'s hostname), in listen notation."""
    host = config.get("hostname", "")
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


DUMPED_FILE = re.compile(r"^# configuration file (.+):$", re.M)


def dumped_paths(text: str) -> list:
    """The files ``nginx -T`` printed (each once, in nginx's reading order)."""
    return list(dict.fromkeys(DUMPED_FILE.findall(text)))


LOOPBACK = re.compile(r"^(127\.\d+\.\d+\.\d+|\[::1\]|localhost)$")


class SshNginx:
    """The ``ssh`` controller: the nginx on destination, the binary ctl with
    the main configuration conf_path (both as the node names them)."""

    def __init__(self, destination: str, conf_path: str = "/etc/nginx/nginx.conf",
                 ctl: str = "nginx", runner: Any = None) -> None:
        if not destination or destination.startswith("-") or any(c.isspace()
                                                                  for c in destination):
            raise NotInstalled(f"{destination!r} is not an ssh destination "
                               "(user@host, or a Host of your ssh configuration)")
        self.destination = destination
        self.conf_path = conf_path
        self.main_conf = conf_path
        self.ctl = ctl
        self.identity = ("ssh", destination, conf_path)
        self.runner = runner if runner is not None else OpenSsh()
        self.files = RemoteFiles(self.runner, destination)
        self._build_info: Optional[BuildInfo] = None
        self._address: Optional[str] = None

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> "SshNginx":
        root = options.get("server_root") or "/etc/nginx"
        return cls(options["node"], root.rstrip("/") + "/nginx.conf",
                   options.get("ctl") or "nginx")

    def _run(self, *argv: str) -> subprocess.CompletedProcess:
        return self.runner.run(self.destination, list(argv))

    def _text(self, proc: subprocess.CompletedProcess) -> str:
        return (proc.stderr + proc.stdout).decode(errors="replace")

    def check_installed(self) -> None:
        try:
            proc = self._run("sh", "-c", INSTALLED_SCRIPT, "sh", self.ctl, self.conf_path)
        except SshError as err:
            raise NotInstalled(f"cannot drive nginx on {self.destination}: {err}") from err
        if proc.returncode != 0:
            raise NotInstalled(f"{self.destination}: {last_line(proc.stderr)}")

    def test(self) -> None:
        proc = self._run(self.ctl, "-c", self.conf_path, "-t")
        if proc.returncode != 0:
            raise NginxError(f"{self.destination}: nginx -t failed: "
                             f"{first_problem(self._text(proc))}")

    def config_files(self) -> Dict[str, bytes]:
        """Every file of the node's configuration, as nginx reads it: the
        paths ``nginx -T`` names (its own include resolution), then their
        exact bytes (nginx -T's copy is not byte-exact)."""
        proc = self._run(self.ctl, "-c", self.conf_path, "-T")
        if proc.returncode != 0:
            raise NginxError(f"{self.destination}: nginx -T failed: "
                             f"{first_problem(self._text(proc))}")
        try:
            return self.files.read_many(dumped_paths(proc.stdout.decode(errors="replace")))
        except RemoteFileError as err:
            raise NginxError(str(err)) from err

    def build_info(self) -> BuildInfo:
        if self._build_info is None:
            proc = self._run(self.ctl, "-V")
            if proc.returncode != 0:
                raise NginxError(f"{self.destination}: {self.ctl} -V failed: "
                                 f"{first_problem(self._text(proc))}")
            self._build_info = parse_build_info(self._text(proc))
        return self._build_info

    def compiled_paths(self) -> Tuple[str, str]:
        info = self.build_info()
        prefix = info.option("prefix") or "/usr/local/nginx"
        return prefix, info.option("pid-path") or prefix.rstrip("/") + "/logs/nginx.pid"

    def prefix(self) -> str:
        return self.compiled_paths()[0]

    def pid_path(self) -> str:
        """The main file's ``pid`` directive (read from the node), else the
        compiled default."""
        try:
            main = parser.parse(parser.decode(self.files.read(self.conf_path)), self.conf_path)
        except (RemoteFileError, parser.ParseError) as err:
            raise NginxError(f"{self.destination}: cannot read {self.conf_path}: {err}") \
                from err
        for node in main.children:
            if node.name == "pid" and node.args:
                if node.args[0].startswith("/"):
                    return node.args[0]
                return self.compiled_paths()[0].rstrip("/") + "/" + node.args[0]
        return self.compiled_paths()[1]

    def _probe(self, pid: int) -> ProcFacts:
        proc = self._run("sh", "-c", PROBE_SCRIPT, "sh", self.ctl, str(pid))
        return parse_probe(proc.stdout.decode(errors="replace"))

    def master(self) -> Tuple[int, ProcFacts]:
        """The pid of the node's running master (pid file, then checked as
        master_problem says; a moment is given to a process of the binary
        that has not retitled itself yet) and what the check saw."""
        path = self.pid_path()
        where = f"{self.destination}: nginx is not running"
        try:
            text = self.files.read(path)[:64]
        except RemoteFileError as err:
            raise NotRunning(f"{where} ({err})") from err
        if not text:
            raise NotRunning(f"{where} (its pid file {path} is empty)")
        pid = int(text) if PID_TEXT.fullmatch(text) else 0
        if pid <= 1:
            raise NotRunning(f"{where}: its pid file {path} holds "
                             f"{text.decode(errors='replace').strip()[:20]!r}, not the pid of a "
                             "master process; nothing was signalled")
        deadline = time.monotonic() + 1.0
        facts = self._probe(pid)
        while (master_problem(facts) or "").startswith("is not an nginx master") \
                and facts.exe == facts.binary and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL)
            facts = self._probe(pid)
        problem = master_problem(facts)
        if problem:
            raise NotRunning(f"{where}: pid {pid} from its pid file {path} {problem}; "
                             "nothing was signalled")
        return pid, facts

    def check_running(self) -> None:
        self.master()

    def reload(self, timeout: float = 30.0) -> None:
        """SIGHUP the checked master; return once only new workers take
        connections (see reload_done)."""
        deadline = time.monotonic() + timeout
        pid, facts = self.master()
        while not has_worker(facts.children) and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL)  # a master just started: its first worker is not new
            facts = self._probe(pid)
        before = set(facts.children)
        proc = self._run("sh", "-c", SIGNAL_SCRIPT, "sh", str(pid), facts.exe or "")
        if proc.returncode != 0:
            raise NotRunning(f"{self.destination}: {last_line(proc.stderr)}; "
                             "nothing was signalled")
        while time.monotonic() < deadline:
            now = self._probe(pid)
            if not now.running:
                raise NginxError(f"{self.destination}: nginx's master (pid {pid}) exited "
                                 "on reload; see its error log")
            if reload_done(before, now.children):
                return
            time.sleep(POLL_INTERVAL)
        raise NginxError(f"{self.destination}: nginx (pid {pid}) did not start workers "
                         f"with the new configuration within {timeout:.0f} s; see its error log")

    def address(self) -> str:
        """The node's own address, as ssh reaches it (listen notation)."""
        if self._address is None:
            self._address = address_of(self.runner.config(self.destination))
        return self._address

    def reach(self, addr: str, port: int) -> Tuple[str, int]:
        """A wildcard or loopback listen is reached at the node's own
        address; a specific address as it is (it is the node's)."""
        if addr in ("*", "[::]") or LOOPBACK.match(addr):
            return self.address(), port
        return addr, port

    def local_path(self, path: str) -> str:
        return path  # the node's own path: its files are read with self.files

    def nginx_path(self, path: str) -> str:
        return path
