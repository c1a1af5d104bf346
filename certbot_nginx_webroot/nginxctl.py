"""Run nginx: test its configuration, reload it, and see what it serves.

Reload is a SIGHUP to the running master, never a start or restart: a master
the plugin started would live outside the service manager.  After a reload
nothing sleeps a fixed time; callers poll what nginx serves until it shows
the new configuration, with a deadline.
"""
import http.client
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import time
from typing import Callable, Dict, NamedTuple, Optional, Tuple

from certbot_nginx_webroot import parser

POLL_INTERVAL = 0.02

# nginx 1.25.1 made HTTP/2 a per-server `http2 on;` and deprecated the
# per-address `listen ... http2`; older versions know only the listen flag.
HTTP2_DIRECTIVE_SINCE = (1, 25, 1)
HTTP2_LISTEN = "listen ... http2"
HTTP2_DIRECTIVE = "http2 on"


class BuildInfo(NamedTuple):
    """What ``nginx -V`` says of a binary."""
    version: Optional[Tuple[int, ...]]  # nginx core version; None if unknown
    configure: Tuple[str, ...]          # the configure arguments

    def option(self, name: str) -> Optional[str]:
        """The value of ``--name=value``, None when not given."""
        prefix = f"--{name}="
        return next((a[len(prefix):] for a in self.configure if a.startswith(prefix)), None)

    @property
    def http2_form(self) -> Optional[str]:
        """How this nginx wants HTTP/2 turned on; None when it was built
        without HTTP/2 or its version is unknown (then the plugin adds none)."""
        if self.version is None or "--with-http_v2_module" not in self.configure:
            return None
        return HTTP2_DIRECTIVE if self.version >= HTTP2_DIRECTIVE_SINCE else HTTP2_LISTEN


def parse_build_info(text: str) -> BuildInfo:
    """``nginx -V`` output as BuildInfo.  The core version is the one after
    ``nginx/`` (Tengine and freenginx print it so too); OpenResty prints its
    own four-part version, whose first three parts are the core's."""
    found = (re.search(r"nginx/(\d+(?:\.\d+)+)", text)
             or re.search(r"version: \S+?/(\d+(?:\.\d+)+)", text))
    version = tuple(int(part) for part in found.group(1).split(".")[:3]) if found else None
    arguments = re.search(r"^configure arguments:(.*)$", text, re.MULTILINE)
    if arguments is None:
        return BuildInfo(version, ())
    try:  # values are shell-quoted: --with-cc-opt='-g -O2'
        configure = shlex.split(arguments.group(1))
    except ValueError:
        configure = arguments.group(1).split()
    return BuildInfo(version, tuple(configure))


class NginxError(RuntimeError):
    """nginx is missing, rejects its configuration, or does not answer."""


class Nginx:
    """The nginx binary ``ctl`` with the main configuration ``conf_path``."""

    def __init__(self, ctl: str, conf_path: str) -> None:
        self.ctl = ctl
        self.conf_path = conf_path
        self._build_info: Optional[BuildInfo] = None

    def binary(self) -> str:
        found = shutil.which(self.ctl)
        if found is None:
            raise NginxError(f"nginx binary {self.ctl!r} not found; "
                             "set --nginx-webroot-ctl to its path")
        return found

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([self.binary(), "-c", self.conf_path, *args],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, errors="replace", check=False)

    def test(self) -> None:
        """``nginx -t``; raises NginxError with nginx's own complaint."""
        proc = self._run("-t")
        if proc.returncode != 0:
            raise NginxError("nginx -t failed: " + _first_problem(proc.stderr + proc.stdout))

    def build_info(self) -> BuildInfo:
        """``nginx -V``, asked once."""
        if self._build_info is None:
            proc = subprocess.run([self.binary(), "-V"], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, errors="replace",
                                  check=False)
            if proc.returncode != 0:
                raise NginxError(f"{self.binary()} -V failed: {proc.stdout.strip()}")
            self._build_info = parse_build_info(proc.stdout)
        return self._build_info

    def compiled_paths(self) -> Tuple[str, str]:
        """(prefix, pid path) compiled into the binary."""
        info = self.build_info()
        prefix = info.option("prefix") or "/usr/local/nginx"
        return prefix, info.option("pid-path") or os.path.join(prefix, "logs/nginx.pid")

    def pid_path(self) -> str:
        """The pid file: the main file's ``pid`` directive, else the compiled
        default.  Only the main file is read, so a broken file elsewhere
        cannot stop a reload."""
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
        path = self.pid_path()
        try:
            with open(path, encoding="ascii") as f:
                pid = int(f.read().strip())
            os.kill(pid, 0)
        except (OSError, ValueError) as err:
            raise NginxError(f"nginx is not running (no live master in pid file {path}); "
                             "start it with your service manager, then rerun") from err
        return pid

    def reload(self, timeout: float = 30.0) -> None:
        """SIGHUP the master and wait until the new configuration is the only
        one taking connections: new workers have started (the master starts
        them only when the configuration loaded) and every old one has exited
        or is "shutting down" (it closed its listening sockets then)."""
        pid = self.master_pid()
        before = set(children_of(pid))
        os.kill(pid, signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = children_of(pid)
            if set(now) - before and all("shutting down" in now[old]
                                         for old in before if old in now):
                return
            time.sleep(POLL_INTERVAL)
        raise NginxError(f"nginx (pid {pid}) did not start workers with the new "
                         f"configuration within {timeout:.0f} s; see its error log")


def _first_problem(output: str) -> str:
    for line in output.splitlines():
        if "[emerg]" in line or "[crit]" in line or "[alert]" in line or "[error]" in line:
            return line.strip()
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


def connect_host(addr: str) -> str:
    """A host to connect to for a listen address ("*" means any)."""
    if addr == "*":
        return "127.0.0.1"
    if addr == "[::]":
        return "::1"
    return addr.strip("[]")


def fetch(host: str, addr: str, port: int, path: str,
          timeout: float = 5.0) -> Tuple[int, bytes]:
    """GET path from addr:port with Host: host; (status, body)."""
    conn = http.client.HTTPConnection(connect_host(addr), port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host, "Connection": "close",
                                           "User-Agent": "certbot-nginx-webroot self-check"})
        resp = conn.getresponse()
        return resp.status, resp.read(65536)
    finally:
        conn.close()


def served_certificate(sni: str, addr: str, port: int, timeout: float = 5.0) -> bytes:
    """DER of the certificate served to a TLS client asking for sni."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((connect_host(addr), port), timeout=timeout) as sock:
        with context.wrap_socket(sock, server_hostname=sni) as tls:
            return tls.getpeercert(binary_form=True) or b""


def wait_until(check: Callable[[], bool], timeout: float) -> bool:
    """Poll check until it returns True or timeout passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return True
        except (OSError, http.client.HTTPException, ssl.SSLError):
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL)


def first_certificate_der(pem_path: str) -> Optional[bytes]:
    """DER of the first certificate in a PEM file (the leaf of a fullchain)."""
    with open(pem_path, encoding="ascii") as f:
        text = f.read()
    m = re.search(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", text, re.S)
    return ssl.PEM_cert_to_DER_cert(m.group(0)) if m else None
