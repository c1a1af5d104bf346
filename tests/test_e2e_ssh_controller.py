"""End to end: the ssh controller alone against the fleet lab's nodes (real
sshd, real nginx, each node its own files, addresses and PID namespace),
through the system's ssh with the lab's client configuration."""
import os
import socket
import stat
import threading
import time

import pytest

import fleetlab
import lab
from certbot_nginx_webroot.controllers import NginxError, NotRunning
from certbot_nginx_webroot.controllers.remote_files import RemoteFileError, RemoteFiles
from certbot_nginx_webroot.controllers.openssh import OpenSsh, SshError
from certbot_nginx_webroot.controllers.ssh import SshNginx
from certbot_nginx_webroot.problems import NotInstalled

MISSING = lab.missing_tools() + fleetlab.missing_tools()
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(bool(MISSING) and not os.environ.get("CI"),
                       reason=f"fleet lab tools missing: {MISSING}"),
]


@pytest.fixture(scope="module")
def fleet():
    if MISSING:
        pytest.fail(f"fleet lab tools missing: {MISSING} (Debian: apt-get install "
                    "haproxy openssh-server openssh-client iproute2 util-linux)")
    nodes = fleetlab.Fleet(3).start()
    yield nodes
    nodes.stop()


def runner(fleet, *options, shared=False):
    return OpenSsh(options=["-F", fleet.ssh_config, *options], share_connections=shared)


def controller(fleet, node, *options, shared=False):
    return SshNginx(node.name, node.conf, fleetlab.NODE_NGINX,
                    runner=runner(fleet, *options, shared=shared))


def logins(node):
    """Logins sshd accepted on node (its log at LogLevel VERBOSE)."""
    with open(node.local("logs/sshd.log"), errors="replace") as f:
        return f.read().count("Accepted publickey")


def processes_naming(text):
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if entry.isdigit() and text.encode() in f.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


def get(host, port, path):
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: fleet.example\r\n\r\n".encode())
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


def test_installed_tested_and_its_build_read_on_each_node(fleet):
    for node in fleet.nodes:
        nginx = controller(fleet, node)
        nginx.check_installed()
        nginx.test()
        assert nginx.build_info().option("prefix")
        assert nginx.identity == ("ssh", node.name, node.conf)
        assert nginx.reach("*", 443) == (node.address, 443)


def test_a_config_test_failure_is_that_nodes_alone(fleet):
    second = fleet.nodes[1]
    second.write("nginx/sites/broken.conf", "server {\n    listen {address}:8081;\n"
                                            "    proxy_passs x;\n}\n")
    try:
        with pytest.raises(NginxError) as err:
            controller(fleet, second).test()
        assert str(err.value).startswith("node2: nginx -t failed: ")
        assert f"{second.path('nginx/sites/broken.conf')}:3" in str(err.value)
        for node in (fleet.nodes[0], fleet.nodes[2]):
            controller(fleet, node).test()  # the same paths, their own files
    finally:
        os.unlink(second.local("nginx/sites/broken.conf"))


def test_the_master_is_checked_in_the_nodes_own_proc(fleet):
    node = fleet.nodes[0]
    pid, facts = controller(fleet, node).master()
    with open(node.local("run/nginx.pid")) as f:
        assert int(f.read()) == pid
    # a pid of the node's PID namespace: on this machine it is not nginx
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            here = f.read()
    except OSError:
        here = b""
    assert not here.startswith(b"nginx: master process")
    assert facts.title.startswith("nginx: master process")


def test_reload_changes_what_that_node_serves_and_drops_no_request(fleet):
    first, second = fleet.nodes[0], fleet.nodes[1]
    second.write("nginx/sites/version.conf", "server {\n    listen {address}:8080;\n"
                                             "    return 200 \"{name} v2\\n\";\n}\n")
    failures, served, stop = [], [], threading.Event()

    def load():  # requests to the node while it reloads: at most 2000, for 60 s at most
        deadline = time.monotonic() + 60
        while not stop.is_set() and len(served) < 2000 and time.monotonic() < deadline:
            time.sleep(0.001)
            try:
                served.append(get(second.address, fleetlab.NODE_HTTP, "/whoami"))
            except OSError as err:
                failures.append(err)
    thread = threading.Thread(target=load)
    thread.start()
    try:
        reloads = [node.reloads() for node in fleet.nodes]
        started = time.monotonic()
        controller(fleet, second).reload(timeout=30)
        took = time.monotonic() - started
    finally:
        stop.set()
        thread.join()
    print(f"reload over ssh took {took:.2f} s; {len(served)} requests during it")
    # over once only new workers take connections: the new server answers now
    assert get(second.address, 8080, "/") == (200, "node2 v2\n")
    with pytest.raises(OSError):
        get(first.address, 8080, "/")  # the first node has no such file, nor reload
    assert [node.reloads() for node in fleet.nodes] == [
        reloads[0], reloads[1] + 1, reloads[2]]
    assert failures == [] and all(answer == (200, "node2\n") for answer in served)


def test_a_shared_connection_logs_in_once_per_node_and_is_gone_after_close(fleet):
    before = [logins(node) for node in fleet.nodes]
    with runner(fleet, shared=True) as shared:
        for node in fleet.nodes:
            nginx = SshNginx(node.name, node.conf, fleetlab.NODE_NGINX, runner=shared)
            started = time.monotonic()
            nginx.check_installed()
            nginx.test()
            nginx.reload(timeout=30)
            print(f"{node.name}: check, test and reload in {time.monotonic() - started:.2f} s")
        control_dir = shared._control_dir
        assert processes_naming(control_dir)  # the masters, while the runner is open
    assert [logins(node) for node in fleet.nodes] == [n + 1 for n in before]
    deadline = time.monotonic() + 5
    while processes_naming(control_dir) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not processes_naming(control_dir) and not os.path.exists(control_dir)


def test_a_stopped_nginx_is_not_running_and_nothing_is_signalled(fleet):
    third = fleet.nodes[2]
    nginx = controller(fleet, third)
    third.run("sh", "-c", f"kill -QUIT $(cat {third.path('run/nginx.pid')})")
    deadline = time.monotonic() + 10
    while os.path.exists(third.local("run/nginx.pid")) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        with pytest.raises(NotRunning) as err:
            nginx.reload(timeout=5)
        assert str(err.value).startswith("node3: nginx is not running")
    finally:
        third.run(fleetlab.NODE_NGINX, "-c", third.conf)
        lab.wait_port(third.address, fleetlab.NODE_HTTP)
    nginx.check_running()


def test_a_key_is_written_atomically_0600_root_and_on_that_node_only(fleet):
    first = fleet.nodes[0]
    key_path = first.path("certs/privkey.pem")
    files = RemoteFiles(runner(fleet), first.name)
    files.write_key(key_path, b"-----BEGIN PRIVATE KEY-----\nlab\n")
    info = os.stat(first.local("certs/privkey.pem"))
    assert stat.S_IMODE(info.st_mode) == 0o600 and (info.st_uid, info.st_gid) == (0, 0)
    assert files.read(key_path) == b"-----BEGIN PRIVATE KEY-----\nlab\n"
    for other in fleet.nodes[1:]:
        with pytest.raises(RemoteFileError):
            RemoteFiles(runner(fleet), other.name).read(key_path)
    # a certificate keeps the mode the admin gave it; no temporary file stays
    cert = first.write("certs/fullchain.pem", "old\n", mode=0o640)
    files.write(cert, b"new\n")
    assert stat.S_IMODE(os.stat(first.local("certs/fullchain.pem")).st_mode) == 0o640
    assert sorted(os.listdir(first.local("certs"))) == ["fullchain.pem", "privkey.pem"]


@pytest.mark.parametrize("known", ["unknown", "changed"])
def test_a_host_key_not_known_is_refused_before_anything_runs(fleet, tmp_path, known):
    first, second = fleet.nodes[0], fleet.nodes[1]
    known_hosts = tmp_path / "known_hosts"
    if known == "unknown":
        known_hosts.write_text("".join(n.host_key_line() for n in fleet.nodes
                                       if n is not first))
    else:  # the second node's key for the first node's address
        known_hosts.write_text(second.host_key_line().replace(second.address, first.address))
    options = ("-o", f"UserKnownHostsFile={known_hosts}")
    reloads, logged_in = first.reloads(), logins(first)
    nginx = controller(fleet, first, *options)
    with pytest.raises(NotInstalled) as err:
        nginx.check_installed()
    assert "Host key verification failed" in str(err.value)
    with pytest.raises(SshError):
        nginx.reload(timeout=5)
    with pytest.raises(SshError):
        RemoteFiles(runner(fleet, *options), first.name).write_key(
            first.path("certs/refused.pem"), b"KEY")
    assert not os.path.exists(first.local("certs/refused.pem"))
    assert (first.reloads(), logins(first)) == (reloads, logged_in)
