"""End to end (issue 23): real certbot with this plugin, real pebble, and
the fleet lab's three nginx nodes (each its own namespaces, files, nginx
and sshd) behind HAProxy's round robin, reached over real ssh.

One module-wide story, in order: a first run issues through the balancer
and installs on every node (each node's own configuration edited over
ssh); a forced renewal reloads each node once and leaves each node serving
the new certificate, under load through the balancer; a node down during a
renewal is named, certbot exits non-zero, and the next ``certbot renew``
(nothing due) brings it up to date; an unknown host key stops a run before
the CA is asked and before any node is touched.

certbot's own directory is under the lab's node path on this side: each
node names the same paths and sees only its own files there, so the
certificate a node serves is the one copied to it, not certbot's own.
"""
import os
import re
import stat
import threading
import time
import urllib.error
import urllib.request

import configobj
import pytest
from acme import challenges

import fleetlab
import lab

MISSING = lab.missing_tools() + fleetlab.missing_tools()
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(bool(MISSING) and not os.environ.get("CI"),
                       reason=f"fleet lab tools missing: {MISSING}"),
]

NAMES = ["fleet.example", "www.fleet.example"]

# Each node's site, as an admin wrote it: on the node's own address (so
# the nodes' configurations differ), no TLS yet.
SITE = """\
server {
    listen {address}:{http};
    server_name fleet.example www.fleet.example;
    root {view}/www;
}
"""


@pytest.fixture(scope="module")
def fleet():
    if MISSING:
        pytest.fail(f"fleet lab tools missing: {MISSING}")
    nodes = fleetlab.Fleet(3).start()
    for node in nodes.nodes:
        node.write("nginx/sites/site.conf", SITE)
        node.run(fleetlab.NODE_NGINX, "-c", node.conf, "-s", "reload")
    for node in nodes.nodes:  # the master logs the signal in its own time
        deadline = time.monotonic() + 10
        while node.reloads() < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
    yield nodes
    nodes.stop()


@pytest.fixture(scope="module")
def certbot(acme, fleet):
    return lab.Certbot(os.path.join(fleet.view, "certbot"), acme, None)


def fleet_args(fleet, ssh_config=None):
    args = ["--nginx-webroot-ssh-config", ssh_config or fleet.ssh_config,
            "--nginx-webroot-server-root", os.path.join(fleet.view, "nginx"),
            "--nginx-webroot-ctl", fleetlab.NODE_NGINX,
            "--nginx-webroot-path", os.path.join(fleet.view, "webroot")]
    for node in fleet.nodes:
        args += ["--nginx-webroot-node", node.name]
    return args


def get(address, port, path, host):
    request = urllib.request.Request(f"http://{address}:{port}{path}", headers={"Host": host})
    opener = urllib.request.build_opener(lab.NoRedirect)
    try:
        with opener.open(request, timeout=5) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def served(node, name):
    return lab.served_cert_der(name, fleetlab.NODE_HTTPS, node.address)


def node_files(node):
    """Every configuration file of the node, as the lab reads it."""
    found = {}
    for directory, _, files in os.walk(node.local("nginx")):
        for name in files:
            with open(os.path.join(directory, name), "rb") as f:
                found[os.path.join(directory, name)] = f.read()
    return found


class Load:
    """Requests through the balancer while certbot runs, HTTP and HTTPS in
    turn (each a new connection, so every node's reload is met); counts
    failures."""

    def __init__(self, fleet):
        self.fleet = fleet
        self.url = f"http://{fleet.balancer}:{lab.HTTP_PORT}/whoami"
        self.done, self.failed = 0, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                if self.done % 2:
                    lab.served_cert_der(NAMES[0], lab.HTTPS_PORT, self.fleet.balancer)
                else:
                    with urllib.request.urlopen(self.url, timeout=5) as answer:
                        answer.read()
                self.done += 1
            except OSError as err:
                self.failed.append(repr(err))
            time.sleep(0.005)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)


def test_first_run_issues_through_the_balancer_and_installs_on_every_node(fleet, certbot):
    reloads = [node.reloads() for node in fleet.nodes]
    certbot.run("run", "-a", "nginx-webroot", "-i", "nginx-webroot", *fleet_args(fleet),
                *sum((["-d", name] for name in NAMES), []))
    issued = lab.leaf_der(certbot.live(NAMES[0]))
    for node in fleet.nodes:
        for name in NAMES:
            assert served(node, name) == issued, (node.name, name)
        # the key as copied: 0600, root's
        key = node.local(os.path.relpath(certbot.live(NAMES[0], "privkey.pem"), fleet.view))
        info = os.lstat(key)
        assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
        assert (info.st_uid, info.st_gid) == (0, 0)
        # the challenge location and the certificate went into the node's own site
        with open(node.local("nginx/sites/site.conf")) as f:
            site = f.read()
        assert f"/{challenges.HTTP01.URI_ROOT_PATH}/" in site and "ssl_certificate" in site
        assert node.address in site
        # its challenge files removed, with the directories made for them
        assert not os.path.exists(node.local(f"webroot/{challenges.HTTP01.URI_ROOT_PATH}"))
    # per node: one reload for the challenge location, one for the certificate
    # and one for the redirect (certbot run's default enhancement)
    assert [node.reloads() - before for node, before in zip(fleet.nodes, reloads)] == [3, 3, 3]
    for node in fleet.nodes:
        status, _ = get(node.address, fleetlab.NODE_HTTP, "/whoami", NAMES[0])
        assert status == 301, node.name
    # through the balancer: every node in turn serves it
    assert {lab.served_cert_der(NAMES[0], lab.HTTPS_PORT, fleet.balancer)
            for _ in range(6)} == {issued}
    renewal = configobj.ConfigObj(os.path.join(certbot.directory, "config", "renewal",
                                               NAMES[0] + ".conf"))
    assert renewal["renewalparams"]["nginx_webroot_node"] == [n.name for n in fleet.nodes]


def test_renewal_reloads_each_node_once_and_each_serves_the_new_certificate(fleet, certbot):
    before = [node_files(node) for node in fleet.nodes]
    reloads = [node.reloads() for node in fleet.nodes]
    previous = lab.leaf_der(certbot.live(NAMES[0]))
    with Load(fleet) as load:
        certbot.run("renew", "--force-renewal", "--no-random-sleep-on-renew")
    renewed = lab.leaf_der(certbot.live(NAMES[0]))
    assert renewed != previous
    assert [node.reloads() - n for node, n in zip(fleet.nodes, reloads)] == [1, 1, 1]
    assert [node_files(node) for node in fleet.nodes] == before  # no edit on any node
    for node in fleet.nodes:
        for name in NAMES:
            assert served(node, name) == renewed, (node.name, name)
    assert load.failed == [] and load.done > 0


def test_a_dry_run_edits_nothing_and_reloads_no_node(fleet, certbot):
    before = [node_files(node) for node in fleet.nodes]
    reloads = [node.reloads() for node in fleet.nodes]
    certbot.run("renew", "--dry-run", "--no-random-sleep-on-renew")
    assert [node_files(node) for node in fleet.nodes] == before
    assert [node.reloads() for node in fleet.nodes] == reloads


def test_a_node_down_is_named_and_the_next_run_brings_it_up_to_date(fleet, certbot):
    second = fleet.nodes[1]
    previous = lab.leaf_der(certbot.live(NAMES[0]))
    second.stop()
    try:
        proc = certbot.run("renew", "--force-renewal", "--no-random-sleep-on-renew",
                           check=False)
    finally:
        second.boot()
        second.wait_ready()
    assert proc.returncode != 0
    assert re.search(r"node2\b", proc.stdout + proc.stderr), proc.stdout + proc.stderr
    renewed = lab.leaf_der(certbot.live(NAMES[0]))
    assert renewed != previous  # saved on the certbot side
    for node in (fleet.nodes[0], fleet.nodes[2]):
        assert served(node, NAMES[0]) == renewed
    assert served(second, NAMES[0]) == previous
    reloads = [node.reloads() for node in fleet.nodes]
    certbot.run("renew", "--no-random-sleep-on-renew")  # nothing is due
    for node in fleet.nodes:
        for name in NAMES:
            assert served(node, name) == renewed, (node.name, name)
    assert [node.reloads() - n for node, n in zip(fleet.nodes, reloads)] == [0, 1, 0]
    # nothing owed any more: a further run reloads nothing
    certbot.run("renew", "--no-random-sleep-on-renew")
    assert [node.reloads() - n for node, n in zip(fleet.nodes, reloads)] == [0, 1, 0]


def test_an_unknown_host_key_stops_the_run_before_the_ca_and_any_node(fleet, certbot,
                                                                      tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("".join(node.host_key_line() for node in fleet.nodes[:2]))
    with open(fleet.ssh_config) as f:
        config = f.read().replace(fleet.known_hosts, str(known))
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text(config)
    before = [node_files(node) for node in fleet.nodes]
    reloads = [node.reloads() for node in fleet.nodes]
    other = lab.Certbot(str(tmp_path / "certbot"), certbot.acme, None)
    proc = other.run("run", "-a", "nginx-webroot", "-i", "nginx-webroot",
                     *fleet_args(fleet, str(ssh_config)), "-d", "other.fleet.example",
                     check=False)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "node3" in output and "Host key verification failed" in output, output
    assert not os.path.exists(tmp_path / "certbot" / "config" / "accounts")  # no CA asked
    assert [node_files(node) for node in fleet.nodes] == before
    assert [node.reloads() for node in fleet.nodes] == reloads


def test_a_node_that_refuses_leaves_every_node_as_it_was(fleet, certbot):
    """All or nothing across nodes: the first run for a new name edits
    node1 and node2, then node3's configuration fails nginx (an admin's typo
    on that node only): node1 and node2 get their files back, the CA is not
    asked to validate, and the error names node3."""
    second = "second.fleet.example"
    for node in fleet.nodes:
        node.write("nginx/sites/second.conf", SITE.replace(
            "fleet.example www.fleet.example", second))
        node.run(fleetlab.NODE_NGINX, "-c", node.conf, "-s", "reload")
    third = fleet.nodes[2]
    third.write("nginx/sites/typo.conf", "server {\n    listen {address}:{http};\n"
                                         "    server_nmae typo.example;\n}\n")
    before = [node_files(node) for node in fleet.nodes]
    try:
        proc = certbot.run("certonly", "-a", "nginx-webroot", *fleet_args(fleet), "-d", second,
                           check=False)
        after = [node_files(node) for node in fleet.nodes]
    finally:
        os.unlink(third.local("nginx/sites/typo.conf"))
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "node3" in output and "server_nmae" in output, output
    assert after == before  # byte for byte, on every node
    for node in fleet.nodes:
        assert not os.path.exists(node.local(f"webroot/{challenges.HTTP01.URI_ROOT_PATH}"))
    assert not os.path.exists(certbot.live(second))


def test_two_lineages_renewed_in_one_run_reload_each_node_once(fleet, certbot):
    second = "second.fleet.example"  # its site is on every node (the test above)
    certbot.run("run", "-a", "nginx-webroot", "-i", "nginx-webroot", *fleet_args(fleet),
                "-d", second)
    before = [node_files(node) for node in fleet.nodes]
    reloads = [node.reloads() for node in fleet.nodes]
    previous = {name: lab.leaf_der(certbot.live(name)) for name in (NAMES[0], second)}
    certbot.run("renew", "--force-renewal", "--no-random-sleep-on-renew")
    assert [node.reloads() - n for node, n in zip(fleet.nodes, reloads)] == [1, 1, 1]
    assert [node_files(node) for node in fleet.nodes] == before
    for name in (NAMES[0], second):
        renewed = lab.leaf_der(certbot.live(name))
        assert renewed != previous[name]
        for node in fleet.nodes:
            assert served(node, name) == renewed, (node.name, name)


def test_the_self_check_names_the_node_that_does_not_serve_the_file(fleet, certbot):
    """node2 alone answers every GET for the name with 403 (a server-level
    if): the self-check asks each node at its own address, names node2 and
    where it asked, and the CA is not asked; every node is as it was."""
    third = "third.fleet.example"
    for node in fleet.nodes:
        site = SITE.replace("fleet.example www.fleet.example", third)
        if node is fleet.nodes[1]:
            site = site.replace("    root", "    if ($request_method = GET) { return 403; }\n"
                                "    root")
        node.write("nginx/sites/third.conf", site)
        node.run(fleetlab.NODE_NGINX, "-c", node.conf, "-s", "reload")
    before = [node_files(node) for node in fleet.nodes]
    proc = certbot.run("certonly", "-a", "nginx-webroot", *fleet_args(fleet), "-d", third,
                       check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert re.search(r"node2: nginx does not serve the challenge files.*via "
                     rf"{re.escape(fleet.nodes[1].address)}:{fleetlab.NODE_HTTP}: HTTP 403",
                     output), output
    assert [node_files(node) for node in fleet.nodes] == before
    assert not os.path.exists(certbot.live(third))
