"""End to end: pebble validates http-01 through the fleet lab's balancer.

Without the plugin's fleet flows (test_e2e_fleet.py runs those): real
certbot's manual plugin with hooks, using the plugin's ssh pieces directly:
the ssh controller puts the persistent challenge location on every node
(written over ssh, `nginx -t` and a reload per node), and the auth hook
writes each challenge file to every node over ssh (stores/ssh.py's
SshDirectory: the design recommended for issue 23), then asks every node
directly before the CA is told to validate.  Round robin sends pebble's request to
any node, so only a file on every node makes issuance certain."""
import os
import sys

import pytest
from acme import challenges

import fleetlab
import lab
from certbot_nginx_webroot.controllers.remote_files import RemoteFiles
from certbot_nginx_webroot.controllers.openssh import OpenSsh
from certbot_nginx_webroot.controllers.ssh import SshNginx

MISSING = lab.missing_tools() + fleetlab.missing_tools()
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(bool(MISSING) and not os.environ.get("CI"),
                       reason=f"fleet lab tools missing: {MISSING}"),
]

# Run by certbot's manual plugin, with CERTBOT_TOKEN and CERTBOT_VALIDATION.
AUTH_HOOK = """\
import os, sys, urllib.request
sys.path.insert(0, {plugin!r})
from certbot_nginx_webroot.controllers.openssh import OpenSsh
from certbot_nginx_webroot.stores.ssh import SshDirectory
token, validation = os.environ["CERTBOT_TOKEN"], os.environ["CERTBOT_VALIDATION"]
with OpenSsh(options=["-F", {ssh_config!r}], share_connections=True) as runner:
    for node in {nodes!r}:
        SshDirectory(runner, node, {webroot!r}).put(token, validation.encode())
# every node asked directly, at its own address, as the self-check will
for address in {addresses!r}:
    url = "http://%s:{port}/{uri_root}/%s" % (address, token)
    with urllib.request.urlopen(url, timeout=5) as answer:
        served = answer.read().decode()
    if served != validation:
        sys.exit("%s serves %r, not the validation" % (address, served))
"""


@pytest.fixture(scope="module")
def fleet():
    if MISSING:
        pytest.fail(f"fleet lab tools missing: {MISSING}")
    nodes = fleetlab.Fleet(3).start()
    yield nodes
    nodes.stop()


def challenge_site():
    """The nodes' default site with the persistent challenge location."""
    location = ("    location ^~ /%s/ {\n        root {view}/webroot;\n    }\n"
                % challenges.HTTP01.URI_ROOT_PATH)
    first_end = fleetlab.NODE_DEFAULT_SITE.index("}\n")
    return (fleetlab.NODE_DEFAULT_SITE[:first_end] + location
            + fleetlab.NODE_DEFAULT_SITE[first_end:])


def test_pebble_issues_through_the_balancer_with_the_file_on_every_node(acme, fleet, tmp_path):
    runner = OpenSsh(options=["-F", fleet.ssh_config], share_connections=True)
    with runner:
        for node in fleet.nodes:  # the first-run edit, on each node's own configuration
            RemoteFiles(runner, node.name).write(node.path("nginx/sites/default.conf"),
                                                 node.fill(challenge_site()).encode())
            nginx = SshNginx(node.name, node.conf, fleetlab.NODE_NGINX, runner=runner)
            nginx.test()
            nginx.reload(timeout=30)
    hook = tmp_path / "auth_hook.py"
    hook.write_text(AUTH_HOOK.format(
        plugin=lab.PLUGIN_PATH, ssh_config=fleet.ssh_config,
        webroot=os.path.join(fleet.view, "webroot"),
        nodes=[node.name for node in fleet.nodes],
        addresses=[node.address for node in fleet.nodes],
        uri_root=challenges.HTTP01.URI_ROOT_PATH, port=fleetlab.NODE_HTTP))
    certbot = lab.Certbot(str(tmp_path / "certbot"), acme, None)
    proc = certbot.run("certonly", "--manual", "--preferred-challenges", "http",
                       "--manual-auth-hook", f"{sys.executable} {hook}",
                       "-d", "fleet.example", "-d", "www.fleet.example", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert os.path.exists(certbot.live("fleet.example"))
    # one file per name, on every node
    for node in fleet.nodes:
        assert len(os.listdir(node.local(f"webroot/{challenges.HTTP01.URI_ROOT_PATH}"))) == 2

