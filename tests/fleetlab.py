"""The fleet lab (issue 23): several nginx nodes behind a real load balancer,
each reached over real ssh, as an admin's servers would be.

Each node is a machine of its own as far as nginx, sshd and a probe can
tell, made of namespaces of one init process (``unshare``):
- its own network namespace, joined to the lab's by a veth pair, with its
  own address (``10.231.<i>.2``; the lab's side is ``10.231.<i>.1``);
- its own mount namespace, where the lab's node directory (``Fleet.view``)
  is bind-mounted from that node's own directory: every node names the
  same paths (configuration, certificates, webroot) and sees only its own
  files, so a certificate copied to one node is not seen by another; and
  a private /run (sshd's privilege separation directory, pid files);
- its own PID namespace with /proc mounted for it: a pid in a node's pid
  file means nothing on the certbot side, as on another machine.
Inside run Debian's nginx and Debian's sshd (host keys and authorized key
made by the lab).  The client side has its own key, known_hosts and ssh
configuration file (``Fleet.ssh_config``, for ``ssh -F``): never the user's
~/.ssh.  HAProxy (Debian's) listens where pebble validates http-01 (the
lab's HTTP_PORT) and on HTTPS_PORT, round robin to the same ports of
every node (HTTP, and TCP for HTTPS).

Everything is started by pid, with the lab's process as the parent that
takes it down (PR_SET_PDEATHSIG): killing a node's init kills every process
of its PID namespace, and its network and mount namespaces go with them
(and the veth pair with the network namespace).
"""
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import List, Optional

import lab

SUBNET = "10.231"  # node i: SUBNET.i.2; the lab's end of its link: SUBNET.i.1
# A node runs its own system's nginx (Debian's package), as a server does.
# The suites' NGINX_BINARY (lab.nginx_binary(): e.g. a newer nginx run
# through a loader script from a directory of this machine) is for the
# local nginx's tests; a node's master would show the loader, not nginx.
NODE_NGINX = "/usr/sbin/nginx"
MAX_NODES = 5
# Each node listens on the ports certbot is told (--http-01-port,
# --https-port), as behind a balancer that forwards a port to the same port
# of every node: the plugin edits and probes a node's blocks on those ports.
NODE_HTTP = lab.HTTP_PORT
NODE_HTTPS = lab.HTTPS_PORT
SSHD = "/usr/sbin/sshd"

# The node's nginx: everything under the node directory, which each node
# sees with its own contents.  {view}, {address}, {name} filled in.
NODE_NGINX_CONF = """\
pid {view}/run/nginx.pid;
error_log {view}/logs/error.log notice;
worker_processes 1;
events { worker_connections 512; }
http {
    access_log off;
    client_body_temp_path {view}/tmp/body;
    proxy_temp_path {view}/tmp/proxy;
    fastcgi_temp_path {view}/tmp/fastcgi;
    uwsgi_temp_path {view}/tmp/uwsgi;
    scgi_temp_path {view}/tmp/scgi;
    default_type text/plain;
    include {view}/nginx/sites/*.conf;
}
"""

# Each node answers any name on its own address with its own files (whoami
# says which node answered), over HTTP and over HTTPS with a certificate of
# its own (CN <name>.fleet.test).
NODE_DEFAULT_SITE = """\
server {
    listen {address}:{http} default_server;
    server_name _;
    root {view}/www;
}
server {
    listen {address}:{https} ssl default_server;
    server_name _;
    ssl_certificate {view}/ssl/default.pem;
    ssl_certificate_key {view}/ssl/default.key;
    root {view}/www;
}
"""

SSHD_CONFIG = """\
ListenAddress {address}:22
HostKey {view}/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
AuthorizedKeysFile {client}/authorized_keys
# The authorized key lives in the lab's temporary directory, under /tmp
# (world-writable): StrictModes would refuse any file there.
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
X11Forwarding no
AllowTcpForwarding no
PrintMotd no
LogLevel VERBOSE
"""

# The client side: every option that could reach outside the lab is set.
SSH_CONFIG_HOST = """\
Host {name}
    HostName {address}
"""
SSH_CONFIG_ALL = """\
Host *
    User root
    IdentityFile {client}/id_ed25519
    IdentitiesOnly yes
    UserKnownHostsFile {client}/known_hosts
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    UpdateHostKeys no
    CheckHostIP no
    BatchMode yes
    ConnectTimeout 5
    ControlMaster no
    LogLevel ERROR
"""

HAPROXY_CONF = """\
global
    maxconn 256
defaults
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    # a node that refuses the connection (stopped): try another
    retries 2
    option redispatch
frontend http
    mode http
    bind {balancer}:{http}
    default_backend nodes_http
backend nodes_http
    mode http
    balance roundrobin
{http_servers}
frontend https
    mode tcp
    bind {balancer}:{https}
    default_backend nodes_https
backend nodes_https
    mode tcp
    balance roundrobin
{https_servers}
"""

# A node's pid 1: reaps the processes that nginx's daemonizing leaves to it.
INIT = """\
import os, time
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(0.2)
"""


def missing_tools() -> List[str]:
    """What the fleet lab needs beyond lab.missing_tools()."""
    tools = {"haproxy": "/usr/sbin/haproxy", "sshd": SSHD, "ssh": "/usr/bin/ssh",
             "ssh-keygen": "/usr/bin/ssh-keygen", "unshare": "/usr/bin/unshare",
             "nsenter": "/usr/bin/nsenter", "ip": "/usr/sbin/ip"}
    return [name for name, path in tools.items()
            if shutil.which(name) is None and not os.path.exists(path)]


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the lab's process dies, so a
    killed test run leaves no node behind."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _spawn(argv: List[str], log_path: str) -> subprocess.Popen:
    with open(log_path, "ab") as log:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)


def _run(*argv: str) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr.strip()}")
    return proc.stdout


def _binary(name: str) -> str:
    return shutil.which(name) or os.path.join("/usr/sbin", name)


def propagates(mountinfo: str, path: str) -> bool:
    """Whether a mount made at path would propagate to other mount
    namespaces: the mount holding path (the longest mount point above it in
    /proc/self/mountinfo) is shared.  A mount above this root (a chroot's)
    is not listed: nothing here can make it shared."""
    best, shared = "", False
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 7:
            continue
        point = fields[4]
        optional = fields[6:fields.index("-")] if "-" in fields else []
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, shared = point, any(tag.startswith("shared:") for tag in optional)
    return shared


class Node:
    """One node: its namespaces, nginx and sshd.  ``directory`` is the
    node's own files as the lab opens them; ``view`` the same files as the
    node names them (every node names the same paths)."""

    def __init__(self, fleet: "Fleet", index: int) -> None:
        self.fleet = fleet
        self.index = index
        self.name = f"node{index}"
        self.address = f"{fleet.subnet}.{index}.2"
        self.lab_address = f"{fleet.subnet}.{index}.1"
        self.link = f"{fleet.link_prefix}{index}"  # the lab's end of the veth pair
        self.view = fleet.view
        self.directory = os.path.join(fleet.directory, "nodes", self.name)
        self.init: Optional[subprocess.Popen] = None  # unshare, whose child is pid 1
        self.init_pid = 0  # the node's pid 1, as the lab sees it
        self.sshd: Optional[subprocess.Popen] = None  # nsenter, waiting for sshd
        self.conf = os.path.join(self.view, "nginx", "nginx.conf")

    def local(self, relpath: str) -> str:
        """The node's file relpath, as the lab opens it."""
        return os.path.join(self.directory, relpath)

    def path(self, relpath: str) -> str:
        """The node's file relpath, as the node names it."""
        return os.path.join(self.view, relpath)

    def write(self, relpath: str, text: str, mode: int = 0o644) -> str:
        """Writes the node's file relpath ({view}, {address}, {name}
        filled in); returns its path as the node names it."""
        path = self.local(relpath)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(self.fill(text))
        os.chmod(path, mode)
        return self.path(relpath)

    def fill(self, text: str) -> str:
        for key, value in (("view", self.view), ("address", self.address),
                           ("name", self.name), ("http", NODE_HTTP), ("https", NODE_HTTPS)):
            text = text.replace("{" + key + "}", str(value))
        return text

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        """argv inside the node (all its namespaces), as root.  nsenter -r:
        entering a mount namespace resets the root directory to the
        namespace's, outside a chroot the lab may run in."""
        proc = subprocess.run(["nsenter", "-t", str(self.init_pid), "-p", "-m", "-n", "-r", "--",
                               *argv], capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{self.name}: {' '.join(argv)} failed: {proc.stderr.strip()}")
        return proc

    def start(self) -> "Node":
        for sub in ("nginx/sites", "logs", "tmp", "www", "webroot", "certs", "ssl", "ssh",
                    "run"):
            os.makedirs(self.local(sub), exist_ok=True)
        # As root, nginx's workers run as nobody: every directory readable.
        for path in (self.directory, *(self.local(s) for s in ("www", "webroot", "nginx"))):
            os.chmod(path, 0o755)
        self.write("nginx/nginx.conf", NODE_NGINX_CONF)
        self.write("nginx/sites/default.conf", NODE_DEFAULT_SITE)
        self.write("www/whoami", "{name}\n")
        self.write(f"www/only-on-{self.name}", "{name}\n")
        _run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-days", "2", "-subj", f"/CN={self.name}.fleet.test",
             "-keyout", self.local("ssl/default.key"), "-out", self.local("ssl/default.pem"))
        os.chmod(self.local("ssl/default.key"), 0o600)
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", self.name,
             "-f", self.local("ssh/ssh_host_ed25519_key"))
        self.write("ssh/sshd_config", SSHD_CONFIG.replace("{client}", self.fleet.client))
        return self.boot()

    def boot(self) -> "Node":
        """Start the node's namespaces, nginx and sshd on the files it has
        (a machine booting again after stop(): its files are kept)."""
        self._start_namespaces()
        self._link()
        self.run(NODE_NGINX, "-c", self.conf)
        self.sshd = _spawn(["nsenter", "-t", str(self.init_pid), "-p", "-m", "-n", "-r", "--",
                            SSHD, "-D", "-e", "-f", self.path("ssh/sshd_config")],
                           self.local("logs/sshd.log"))
        return self

    def _start_namespaces(self) -> None:
        # --propagation unchanged: unshare's default (private) fails where
        # / is no mount point (a chroot, as fresh-debian12 runs); made
        # private below, or checked not to propagate.
        self.init = _spawn(["unshare", "--pid", "--fork", "--kill-child", "--mount",
                            "--net", "--mount-proc", "--propagation", "unchanged", "--",
                            sys.executable, "-c", INIT], self.local("logs/init.log"))
        children = f"/proc/{self.init.pid}/task/{self.init.pid}/children"
        deadline = time.monotonic() + 10
        while not self.init_pid and time.monotonic() < deadline:
            try:
                with open(children) as f:
                    found = f.read().split()
            except OSError:
                found = []
            if found:
                self.init_pid = int(found[0])
            else:
                time.sleep(0.01)
        if not self.init_pid:
            raise RuntimeError(f"{self.name}: unshare started no init")
        if self.run("mount", "--make-rprivate", "/", check=False).returncode != 0:
            mountinfo = self.run("cat", "/proc/self/mountinfo").stdout
            if propagates(mountinfo, self.view):
                raise RuntimeError(f"{self.name}: mounts under {self.view} would propagate "
                                   "out of the node's mount namespace (a shared mount), and "
                                   "/ cannot be made private here")
        # The node's own directory at the shared path, and its own /run.
        self.run("mount", "--bind", self.directory, self.view)
        self.run("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/run")
        self.run("mkdir", "-m", "0755", "/run/sshd")

    def _link(self) -> None:
        _run("ip", "link", "add", self.link, "type", "veth", "peer", "name", "eth0",
             "netns", f"/proc/{self.init_pid}/ns/net")
        _run("ip", "addr", "add", f"{self.lab_address}/24", "dev", self.link)
        _run("ip", "link", "set", self.link, "up")
        self.run("ip", "link", "set", "lo", "up")
        self.run("ip", "addr", "add", f"{self.address}/24", "dev", "eth0")
        self.run("ip", "link", "set", "eth0", "up")
        self.run("ip", "route", "add", "default", "via", self.lab_address)

    def host_key_line(self) -> str:
        """The node's known_hosts line."""
        with open(self.local("ssh/ssh_host_ed25519_key.pub")) as f:
            kind, key = f.read().split()[:2]
        return f"{self.address} {kind} {key}\n"

    def wait_ready(self) -> None:
        lab.wait_port(self.address, NODE_HTTP)
        lab.wait_port(self.address, 22)

    def net_namespace(self) -> str:
        return os.readlink(f"/proc/{self.init_pid}/ns/net")

    def stop(self) -> None:
        """Kills the node's init: the kernel kills every process of its PID
        namespace; its namespaces and veth pair go with the last of them."""
        if self.init is None:
            return
        # unshare ignores SIGTERM while it waits for its child: the node's
        # pid 1 is killed itself, and unshare returns with it.
        if self.init_pid > 1:  # never 0: kill(0) is this whole process group
            try:
                os.kill(self.init_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        else:
            self.init.kill()  # unshare started no node
        self.init.wait(10)
        if self.sshd is not None:
            self.sshd.wait(10)  # nsenter, which waited for sshd
        # The kernel frees a dead network namespace (and the veth pair in
        # it) in its own time; the lab's end goes now.
        subprocess.run(["ip", "link", "del", self.link], capture_output=True)
        self.init = None
        self.init_pid = 0
        self.sshd = None

    def reloads(self) -> int:
        """SIGHUPs the node's master has received (from its error log)."""
        try:
            with open(self.local("logs/error.log"), errors="replace") as f:
                return f.read().count("(SIGHUP) received")
        except FileNotFoundError:
            return 0


class Fleet:
    """count nodes (3 by default, up to MAX_NODES) and HAProxy in front."""

    def __init__(self, count: int = 3, balancer: str = "127.0.0.1",
                 subnet: str = SUBNET) -> None:
        if not 1 <= count <= MAX_NODES:
            raise ValueError(f"a fleet has 1 to {MAX_NODES} nodes, not {count}")
        self.subnet = subnet  # two labs at once in one namespace: two subnets
        self.link_prefix = "fl" + subnet.replace(".", "-") + "-"  # fl10-231-1: 10 chars
        self.directory = tempfile.mkdtemp(prefix="fleet-lab-")
        os.chmod(self.directory, 0o755)  # nginx's workers (nobody) walk through it
        self.view = os.path.join(self.directory, "node")  # every node's own files, there
        self.client = os.path.join(self.directory, "client")
        self.ssh_config = os.path.join(self.client, "ssh_config")
        self.known_hosts = os.path.join(self.client, "known_hosts")
        self.identity = os.path.join(self.client, "id_ed25519")
        self.balancer = balancer
        self.nodes = [Node(self, i) for i in range(1, count + 1)]
        self.haproxy: Optional[subprocess.Popen] = None

    def start(self) -> "Fleet":
        self._check_subnet_free()
        os.makedirs(self.view)
        os.makedirs(self.client, mode=0o700)
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fleet lab",
             "-f", self.identity)
        shutil.copy(self.identity + ".pub", os.path.join(self.client, "authorized_keys"))
        try:
            # A stopped node's address must be as unreachable as a machine
            # that is off.  Its link goes with it, and where the lab runs on
            # the machine's own network (the Quickstart) the default route
            # would carry its packets on, to whatever answers there (a
            # sandbox's egress proxy accepts any connection): the subnet is
            # unreachable but through the nodes' own links.
            _run("ip", "route", "add", "unreachable", f"{self.subnet}.0.0/16")
            for node in self.nodes:
                node.start()
            self._write_client_config()
            self._start_haproxy()
            for node in self.nodes:
                node.wait_ready()
            lab.wait_port(self.balancer, lab.HTTP_PORT)
        except BaseException:
            self.stop()
            raise
        return self

    def _check_subnet_free(self) -> None:
        """The lab adds subnet.<i>.0/24 links to the namespace it runs in:
        refuse when that namespace routes any of them already (a real
        network, or another fleet lab)."""
        routes = _run("ip", "-4", "route", "show")
        taken = [line for line in routes.splitlines()
                 if any(word.startswith(self.subnet + ".") for word in line.split()[:2])]
        if taken:
            raise RuntimeError(f"the fleet lab's addresses {self.subnet}.0.0/16 are routed "
                               f"here already ({taken[0]}); run it in a network "
                               "namespace of its own (unshare -n)")

    def _write_client_config(self) -> None:
        with open(self.known_hosts, "w") as f:
            f.writelines(node.host_key_line() for node in self.nodes)
        with open(self.ssh_config, "w") as f:
            for node in self.nodes:
                f.write(SSH_CONFIG_HOST.format(name=node.name, address=node.address))
            f.write(SSH_CONFIG_ALL.format(client=self.client))

    def _start_haproxy(self) -> None:
        servers = lambda port: "\n".join(  # noqa: E731
            f"    server {n.name} {n.address}:{port}" for n in self.nodes)
        conf = os.path.join(self.directory, "haproxy.cfg")
        with open(conf, "w") as f:
            f.write(HAPROXY_CONF.format(balancer=self.balancer, http=lab.HTTP_PORT,
                                        https=lab.HTTPS_PORT, http_servers=servers(NODE_HTTP),
                                        https_servers=servers(NODE_HTTPS)))
        _run(_binary("haproxy"), "-c", "-q", "-f", conf)
        self.haproxy = _spawn([_binary("haproxy"), "-db", "-f", conf],
                              os.path.join(self.directory, "haproxy.log"))

    def ssh_command(self) -> List[str]:
        """ssh with the lab's client configuration (key, known_hosts)."""
        return ["ssh", "-F", self.ssh_config]

    def ssh(self, destination: str, command: str, *options: str) -> subprocess.CompletedProcess:
        return subprocess.run([*self.ssh_command(), *options, destination, command],
                              capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.haproxy is not None:
            self.haproxy.terminate()
            try:
                self.haproxy.wait(10)
            except subprocess.TimeoutExpired:
                self.haproxy.kill()
                self.haproxy.wait()
            self.haproxy = None
        for node in self.nodes:
            node.stop()
        subprocess.run(["ip", "route", "del", "unreachable", f"{self.subnet}.0.0/16"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        shutil.rmtree(self.directory, ignore_errors=True)
