"""End to end: one `certbot renew` run over several lineages costs one nginx
reload (real certbot, pebble and nginx, as in test_e2e.py)."""
import os
import sys

import pytest

import lab

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(bool(lab.missing_tools()) and not os.environ.get("CI"),
                       reason=f"end-to-end tools missing: {lab.missing_tools()}"),
]

NAMES = ["a.run.example", "b.run.example", "c.run.example"]

# A post-hook that records which certificate each name is served when it
# runs: certbot runs post-hooks after the whole run.
POST_HOOK = """\
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
with open(sys.argv[1], "w") as out:
    for name in sys.argv[3:]:
        with socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=5) as s:
            with ctx.wrap_socket(s, server_hostname=name) as tls:
                out.write(name + " " + tls.getpeercert(binary_form=True).hex() + "\\n")
"""


def sites_with_lineages(acme, nginx, names, installer=True):
    """One proxy site and one lineage per name, issued and installed."""
    for name in names:
        nginx.write(f"sites/{name}.conf", "server {\n    listen {http};\n    server_name %s;\n"
                    "    location / { proxy_pass http://127.0.0.1:{backend}; }\n}\n" % name)
    nginx.start()
    certbot = lab.Certbot(os.path.join(nginx.prefix, "certbot"), acme, nginx)
    for name in names:
        args = ["-a", "nginx-webroot", "-i", "nginx-webroot"] if installer else \
               ["certonly", "-a", "nginx-webroot"]
        certbot.run(*args, *certbot.plugin_args(), "--cert-name", name, "-d", name)
    return certbot


def served(names):
    return {name: lab.served_cert_der(name) for name in names}


def test_renew_run_over_several_lineages_reloads_once(acme, nginx, tmp_path):
    certbot = sites_with_lineages(acme, nginx, NAMES)
    before, reloads = nginx.snapshot(), nginx.reloads()
    old = served(NAMES)
    seen_by_hook = tmp_path / "post-hook.txt"
    hook = tmp_path / "hook.py"
    hook.write_text(POST_HOOK)
    certbot.run("renew", "--force-renewal", "--no-random-sleep-on-renew", "--post-hook",
                f"{sys.executable} {hook} {seen_by_hook} {lab.HTTPS_PORT} {' '.join(NAMES)}")
    assert nginx.reloads() - reloads == 1
    assert nginx.snapshot() == before
    new = {name: lab.leaf_der(certbot.live(name)) for name in NAMES}
    assert all(new[name] != old[name] for name in NAMES)
    assert served(NAMES) == new  # every renewed certificate live when certbot exited
    # The reload came after the last lineage and before the post-hook.
    hook_saw = dict(line.split() for line in seen_by_hook.read_text().splitlines())
    assert {name: bytes.fromhex(der) for name, der in hook_saw.items()} == new


def test_renew_of_one_lineage_is_unchanged(acme, nginx):
    certbot = sites_with_lineages(acme, nginx, NAMES[:2])
    before, reloads = nginx.snapshot(), nginx.reloads()
    certbot.run("renew", "--cert-name", NAMES[1], "--force-renewal", "--no-random-sleep-on-renew")
    assert nginx.reloads() - reloads == 1
    assert nginx.snapshot() == before
    assert lab.served_cert_der(NAMES[1]) == lab.leaf_der(certbot.live(NAMES[1]))


def test_last_lineage_of_the_run_without_this_installer(acme, nginx):
    """The run's last lineage (sorted by name) has no installer, so certbot
    never hands it to this plugin: the reload happens when certbot exits."""
    certbot = sites_with_lineages(acme, nginx, NAMES[:2])
    nginx.write("sites/z.conf", "server {\n    listen {http};\n    server_name z.run.example;\n"
                "    location / { return 200; }\n}\n")
    certbot.run("certonly", "-a", "nginx-webroot", *certbot.plugin_args(),
                "--cert-name", "z.run.example", "-d", "z.run.example")
    before, reloads = nginx.snapshot(), nginx.reloads()
    proc = certbot.run("renew", "--force-renewal", "--no-random-sleep-on-renew")
    assert nginx.reloads() - reloads == 1, proc.stderr
    assert nginx.snapshot() == before
    assert served(NAMES[:2]) == {n: lab.leaf_der(certbot.live(n)) for n in NAMES[:2]}


def test_deferred_reload_fails_names_lineages_and_keeps_serving(acme, nginx):
    certbot = sites_with_lineages(acme, nginx, NAMES)
    old = served(NAMES)
    reloads = nginx.reloads()
    # A typo made after nginx started: nginx -t fails when the run reloads.
    nginx.write("sites/typo.conf", "servr { }\n")
    proc = certbot.run("renew", "--force-renewal", "--no-random-sleep-on-renew", check=False)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output
    failure = next(line for line in output.splitlines() if "nginx -t failed" in line)
    assert all(name in failure for name in NAMES), failure
    assert "typo.conf" in failure
    assert nginx.reloads() == reloads
    assert served(NAMES) == old  # still the previous certificates
