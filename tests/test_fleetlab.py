"""End to end: the fleet lab itself (issue 23): nodes that are machines of
their own (files, address, nginx, sshd), HAProxy in round robin in front,
ssh with the lab's own key and known_hosts, and nothing left behind."""
import os
import socket
import subprocess
import time

import pytest

import fleetlab
import lab

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
    started = time.monotonic()
    nodes = fleetlab.Fleet(3).start()
    print(f"fleet of 3 started in {time.monotonic() - started:.2f} s")
    yield nodes
    nodes.stop()


def get(host, port, path):
    """(status, body) of GET path, one connection (HTTP/1.0)."""
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


def test_each_node_serves_its_own_files_at_its_own_address(fleet):
    for node in fleet.nodes:
        assert get(node.address, fleetlab.NODE_HTTP, "/whoami") == (200, f"{node.name}\n")
        for other in fleet.nodes:
            status, _ = get(node.address, fleetlab.NODE_HTTP, f"/only-on-{other.name}")
            assert status == (200 if other is node else 404), (node.name, other.name)


def test_balancer_alternates_between_the_nodes(fleet):
    answers = [get(fleet.balancer, lab.HTTP_PORT, "/whoami")[1].strip() for _ in range(9)]
    names = [node.name for node in fleet.nodes]
    assert sorted(answers) == sorted(names * 3)
    # round robin: every run of three requests is answered by all three nodes
    assert all(sorted(answers[i:i + 3]) == names for i in range(0, 9, 3)), answers


def test_a_stopped_node_costs_no_request_through_the_balancer(fleet):
    second = fleet.nodes[1]
    second.run("sh", "-c", f"kill -QUIT $(cat {second.path('run/nginx.pid')})")
    deadline = time.monotonic() + 10
    while os.path.exists(second.local("run/nginx.pid")) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        # HAProxy retries a refused connection on another node
        answers = [get(fleet.balancer, lab.HTTP_PORT, "/whoami") for _ in range(6)]
        assert {status for status, _ in answers} == {200}
        assert {body.strip() for _, body in answers} == {"node1", "node3"}
    finally:
        second.run(fleetlab.NODE_NGINX, "-c", second.conf)
        lab.wait_port(second.address, fleetlab.NODE_HTTP)
    answers = {get(fleet.balancer, lab.HTTP_PORT, "/whoami")[1].strip() for _ in range(3)}
    assert answers == {"node1", "node2", "node3"}


def common_name(der):
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    name = x509.load_der_x509_certificate(der).subject
    return name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def test_balancer_passes_tls_through_to_each_node_in_turn(fleet):
    for node in fleet.nodes:  # each node's own certificate at its own address
        der = lab.served_cert_der("fleet.example", fleetlab.NODE_HTTPS, node.address)
        assert common_name(der) == f"{node.name}.fleet.test"
    names = [common_name(lab.served_cert_der("fleet.example", lab.HTTPS_PORT, fleet.balancer))
             for _ in range(6)]
    assert sorted(names[:3]) == sorted(names[3:]) == sorted(
        f"{node.name}.fleet.test" for node in fleet.nodes), names


def test_ssh_runs_in_the_nodes_own_files(fleet):
    first, second = fleet.nodes[0], fleet.nodes[1]
    # written on the first node only, at a path every node names
    secret = first.write("certs/only-here.pem", "first node's key\n", mode=0o600)
    for node in fleet.nodes:
        proc = fleet.ssh(node.name, f"cat {node.path('www/whoami')}; cat {secret}")
        if node is first:
            assert proc.returncode == 0, proc.stderr
            assert proc.stdout == f"{node.name}\nfirst node's key\n"
        else:
            assert proc.returncode == 1 and "No such file" in proc.stderr
            assert proc.stdout == f"{node.name}\n"
    # by user@address too, the way an admin names a node without an alias
    proc = fleet.ssh(f"root@{second.address}",
                     "cat /proc/1/cmdline | tr '\\0' ' '; ip -4 -o addr show")
    assert proc.returncode == 0, proc.stderr
    assert f" {second.address}/" in proc.stdout
    assert not any(f" {n.address}/" in proc.stdout for n in fleet.nodes if n is not second)
    # the node's own PID namespace: its pid 1 is the lab's init, not this machine's
    assert "os.wait()" in proc.stdout


def test_unknown_and_changed_host_keys_are_refused(fleet, tmp_path):
    first, second = fleet.nodes[0], fleet.nodes[1]
    marker = first.path("www/ssh-ran")
    unknown = tmp_path / "known_hosts_without_first"
    unknown.write_text("".join(n.host_key_line() for n in fleet.nodes if n is not first))
    proc = fleet.ssh(first.name, f"touch {marker}", "-o", f"UserKnownHostsFile={unknown}")
    assert proc.returncode == 255
    assert "Host key verification failed" in proc.stderr
    # the second node's key for the first node's address: a changed key
    changed = tmp_path / "known_hosts_changed"
    changed.write_text(second.host_key_line().replace(second.address, first.address))
    proc = fleet.ssh(first.name, f"touch {marker}", "-o", f"UserKnownHostsFile={changed}")
    assert proc.returncode == 255
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in proc.stderr
    assert not os.path.exists(first.local("www/ssh-ran"))
    # and with the lab's known_hosts the same command runs
    assert fleet.ssh(first.name, f"touch {marker}").returncode == 0
    assert os.path.exists(first.local("www/ssh-ran"))


def _processes_in(namespace):
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and os.readlink(f"/proc/{entry}/ns/net") == namespace:
                found.append(int(entry))
        except OSError:
            continue
    return found


def _alive(pid):
    """Whether pid runs (a zombie has exited: only its parent's wait is due)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:].split()[0] != b"Z"


def test_stopping_the_fleet_leaves_nothing_behind():
    # beside the module's fleet: other addresses, and no balancer (the
    # module's fleet has the balancer's ports)
    fleet = fleetlab.Fleet(2, subnet="10.232", balancer="127.0.0.3").start()
    namespaces = [node.net_namespace() for node in fleet.nodes]
    processes = [_processes_in(ns) for ns in namespaces]
    haproxy = fleet.haproxy.pid
    assert f"{fleet.link_prefix}1" in subprocess.run(["ip", "-o", "link", "show"],
                                                     capture_output=True, text=True).stdout
    # pid 1, nginx's master and worker, sshd: each node's own
    assert all(len(pids) >= 4 for pids in processes), processes
    fleet.stop()
    # killed at once; reaped by whoever inherits them, in its own time
    left = [pid for pids in processes for pid in pids] + [haproxy]
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in left) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in left if _alive(pid)]
    assert not any(_processes_in(ns) for ns in namespaces)
    # ip, not /sys/class/net: sysfs shows the network namespace of whoever
    # mounted it, not necessarily this process's
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                           check=True).stdout
    assert fleet.link_prefix not in links
    assert f"{fleet.subnet}." not in subprocess.run(["ip", "-4", "route", "show"],
                                                    capture_output=True, text=True).stdout
    assert not os.path.exists(fleet.directory)
    with pytest.raises(OSError):
        socket.create_connection((fleet.balancer, lab.HTTP_PORT), timeout=1).close()
