"""End to end (real certbot, pebble and nginx): a first --dry-run, and a
renew run killed before its reload.

A dry run needs the challenge location as much as a real run does: it is
added for the run, served, and undone with the challenges (every config file
byte-identical after; the reloads are allowed).  The one reload of a
`certbot renew` run is persisted, so a run killed before it is honoured by
the next run, even one with nothing due.
"""
import os
import re
import signal
import stat
import sys
import time

import pytest
from acme import challenges

import lab
from certbot_nginx_webroot.controllers import local as nginxctl

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(bool(lab.missing_tools()) and not os.environ.get("CI"),
                       reason=f"end-to-end tools missing: {lab.missing_tools()}"),
]

CHALLENGE_DIR = challenges.HTTP01.URI_ROOT_PATH  # .well-known/acme-challenge
# Not a certbot token: a file of the test's own in the webroot, served only
# while a challenge location for the webroot is.
MARKER = "/" + CHALLENGE_DIR + "/marker-of-the-test"
# What the proxied app answers (proxy_pass sends the upstream's address as Host).
BACKEND = (200, b"backend 127.0.0.1\n")
# Under the lab's prefix but not configuration (see test_faults.NOT_CONFIG).
NOT_CONFIG = ("logs", "tmp", "webroot", "www", "certbot", "nginx.pid", ".certbot.lock")


def proxy_site(name):
    return ("server {\n    listen {http};\n    server_name %s;\n"
            "    location / { proxy_pass http://127.0.0.1:{backend}; }\n}\n" % name)


def config_files(nginx):
    """Every file under the server root but NOT_CONFIG, with its bytes."""
    found = {}
    for d, dirs, files in os.walk(nginx.prefix):
        if d == nginx.prefix:
            dirs[:] = [x for x in dirs if x not in NOT_CONFIG]
        for name in files:
            path = os.path.join(d, name)
            if os.path.relpath(path, nginx.prefix) not in NOT_CONFIG:
                with open(path, "rb") as f:
                    found[path] = f.read()
    return found


def start(acme, nginx, *names):
    for name in names:
        nginx.write(f"sites/{name}.conf", proxy_site(name))
    nginx.start()
    marker = os.path.join(nginx.webroot, MARKER.lstrip("/"))
    os.makedirs(os.path.dirname(marker))
    with open(marker, "w") as f:
        f.write("served from the webroot\n")
    return lab.Certbot(os.path.join(nginx.prefix, "certbot"), acme, nginx)


def out(proc):
    return proc.stdout + proc.stderr


def refusal(proc):
    return [line for line in out(proc).splitlines() if "nginx does not serve" in line]


@pytest.mark.parametrize("installer", [[], ["-i", "nginx-webroot"]], ids=["certonly", "with-i"])
def test_first_dry_run_succeeds_and_leaves_every_file_as_it_was(acme, nginx, installer):
    certbot = start(acme, nginx, "dry.example")
    before, reloads = config_files(nginx), nginx.reloads()
    backend = lab.http_get("dry.example", MARKER)
    assert backend == BACKEND  # no challenge location yet
    proc = certbot.run("certonly", "--dry-run", "-a", "nginx-webroot", *installer,
                       *certbot.plugin_args(), "-d", "dry.example", check=False)
    assert proc.returncode == 0, out(proc)
    assert "The dry run was successful" in out(proc)
    assert config_files(nginx) == before  # byte for byte, every config file
    # Served for the run (one reload), then undone and reloaded again: nginx
    # serves what it served before.
    assert nginx.reloads() - reloads == 2
    assert lab.http_get("dry.example", MARKER) == backend
    assert os.listdir(os.path.join(nginx.webroot, CHALLENGE_DIR)) == [os.path.basename(MARKER)]
    assert not os.path.exists(os.path.join(certbot.directory, "work", "temp_checkpoint"))
    # The real run then does what the dry run tried.
    certbot.run("certonly", "-a", "nginx-webroot", *certbot.plugin_args(), "-d", "dry.example")
    assert lab.http_get("dry.example", MARKER)[1] == b"served from the webroot\n"


def drop_challenge_location(nginx, name):
    """What an app upgrade that rewrites its site file does: the plugin's
    challenge location is gone, in the file and in what nginx serves."""
    path = os.path.join(nginx.prefix, "sites", f"{name}.conf")
    with open(path) as f:
        text = f.read()
    # Up to the brace at the location's own indentation: the location holds
    # a block of its own (limit_except).
    text, count = re.subn(r"\n( *)location \^~ /\.well-known/acme-challenge/ \{  # certbot-"
                          r"nginx-webroot\n(?:.*# certbot-nginx-webroot\n)*?\1\}  # certbot-"
                          r"nginx-webroot(?=\n)", "", text)
    assert count >= 1, text
    with open(path, "w") as f:
        f.write(text)
    # Reloaded as the plugin does it: until every old worker stops taking
    # connections (right after a SIGHUP an old one may still answer).
    nginxctl.LocalNginx(lab.nginx_binary(), nginx.conf).reload()
    assert lab.http_get(name, MARKER) == BACKEND


def test_renew_dry_run_with_the_installer_when_the_location_is_gone(acme, nginx):
    certbot = start(acme, nginx, "gone.example")
    certbot.run("-a", "nginx-webroot", "-i", "nginx-webroot", *certbot.plugin_args(),
                "-d", "gone.example", "--no-redirect")
    drop_challenge_location(nginx, "gone.example")
    before, reloads = config_files(nginx), nginx.reloads()
    backend = lab.http_get("gone.example", MARKER)
    served = lab.served_cert_der("gone.example")
    proc = certbot.run("renew", "--dry-run", "--no-random-sleep-on-renew", check=False)
    assert proc.returncode == 0, out(proc)
    assert config_files(nginx) == before
    assert nginx.reloads() - reloads == 2
    assert lab.http_get("gone.example", MARKER) == backend
    assert lab.served_cert_der("gone.example") == served


IF_403 = "    if ($request_method = GET) { return 403; }\n"


def test_dry_run_that_the_real_run_refuses_fails_with_the_same_message(acme, nginx):
    nginx.write("sites/denied.conf", proxy_site("denied.example").replace(
        "    location /", IF_403 + "    location /"))
    certbot = start(acme, nginx)
    before, reloads = config_files(nginx), nginx.reloads()
    lines = []
    for dry_run in (["--dry-run"], []):
        proc = certbot.run("certonly", *dry_run, "-a", "nginx-webroot", *certbot.plugin_args(),
                           "-d", "denied.example", check=False)
        assert proc.returncode == 1, out(proc)
        assert "Traceback" not in out(proc)
        assert config_files(nginx) == before
        # The token differs from run to run; the rest is the same.
        lines.append([re.sub(CHALLENGE_DIR + r"/[\w-]+", CHALLENGE_DIR + "/TOKEN", line)
                      for line in refusal(proc)])
    assert lines[0] and lines[0] == lines[1]
    assert "denied.conf:4" in lines[0][0]  # the if that answers, in the file as it is
    assert lab.http_get("denied.example", "/")[0] == 403
    assert nginx.reloads() - reloads == 4  # each run: the edit served, then undone


def test_dry_run_killed_mid_way_is_undone_by_the_next_run(acme, nginx):
    certbot = start(acme, nginx, "killed.example")
    before = config_files(nginx)
    backend = lab.http_get("killed.example", MARKER)
    running = certbot.start("certonly", "--dry-run", "-a", "nginx-webroot",
                            *certbot.plugin_args(), "-d", "killed.example")
    # certbot waits for the CA's validation (a poll a second) with the
    # temporary location served: kill it then.
    deadline = time.monotonic() + 60
    while lab.http_get("killed.example", MARKER) == backend:
        assert running.poll() is None and time.monotonic() < deadline
        time.sleep(0.005)
    running.send_signal(signal.SIGKILL)
    running.communicate()
    assert config_files(nginx) != before
    proc = certbot.run("certonly", "--dry-run", "-a", "nginx-webroot", *certbot.plugin_args(),
                       "-d", "killed.example", check=False)
    assert proc.returncode == 0, out(proc)
    assert "interrupted certbot run" in out(proc)
    assert config_files(nginx) == before
    assert lab.http_get("killed.example", MARKER) == backend


# A hook that kills the certbot running it with SIGKILL, as systemd does when
# `systemctl stop` passes its timeout (or as the OOM killer does): certbot
# runs deploy hooks after saving a renewed certificate and before the
# installer's reload, which a renew run makes once, at its end.
KILLER = """\
#!{python}
import os, signal, sys
only = {only!r}
if only and not os.environ.get("RENEWED_LINEAGE", "").endswith("/" + only):
    sys.exit(0)
pid = os.getppid()
while pid > 1:
    with open(f"/proc/{{pid}}/cmdline", "rb") as f:
        if b"certbot.main" in f.read():
            os.kill(pid, signal.SIGKILL)
            break
    with open(f"/proc/{{pid}}/stat") as f:
        pid = int(f.read().rsplit(")", 1)[1].split()[1])
"""


def killer_hook(certbot, kind, only=""):
    """A script in certbot's renewal-hooks/<kind>/ that kills certbot (when
    it renewed the lineage only, if given); returns its path."""
    path = os.path.join(certbot.directory, "config", "renewal-hooks", kind, "kill-certbot")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(KILLER.format(python=sys.executable, only=only))
    os.chmod(path, 0o755)
    return path


def owed_file(certbot):
    return os.path.join(certbot.directory, "work", "nginx-webroot-pending-reloads.json")


KILLED = ["a.kill.example", "b.kill.example"]


def issue_all(acme, nginx, names):
    certbot = start(acme, nginx, *names)
    for name in names:
        certbot.run("-a", "nginx-webroot", "-i", "nginx-webroot", *certbot.plugin_args(),
                    "--cert-name", name, "-d", name, "--no-redirect")
    return certbot


def test_renew_killed_before_its_reload_is_reloaded_by_the_next_run(acme, nginx):
    certbot = issue_all(acme, nginx, KILLED)
    old = {name: lab.served_cert_der(name) for name in KILLED}
    before, reloads = config_files(nginx), nginx.reloads()
    # Killed in the deploy hook of the run's last lineage: a.kill.example's
    # reload was deferred to the end of the run, and b.kill.example's
    # certificate was saved a moment ago.
    hook = killer_hook(certbot, "deploy", only=KILLED[1])
    proc = certbot.run("renew", "--force-renewal", "--no-random-sleep-on-renew", check=False)
    assert proc.returncode == -signal.SIGKILL, out(proc)
    os.unlink(hook)
    new = {name: lab.leaf_der(certbot.live(name)) for name in KILLED}
    assert all(new[name] != old[name] for name in KILLED)  # both saved ...
    assert nginx.reloads() == reloads                       # ... and never reloaded for
    assert {name: lab.served_cert_der(name) for name in KILLED} == old
    assert stat.S_IMODE(os.stat(owed_file(certbot)).st_mode) == 0o600
    # The next run has nothing due, and reloads nginx once for both.
    proc = certbot.run("renew", "--no-random-sleep-on-renew", check=False)
    assert proc.returncode == 0, out(proc)
    assert "not yet due" in out(proc)
    assert nginx.reloads() - reloads == 1
    assert {name: lab.served_cert_der(name) for name in KILLED} == new  # when certbot exited
    assert config_files(nginx) == before
    assert not os.path.exists(owed_file(certbot))
    # Honoured once: the run after that reloads nothing.
    certbot.run("renew", "--no-random-sleep-on-renew")
    assert nginx.reloads() - reloads == 1


def test_renew_killed_before_saving_costs_the_next_run_no_reload(acme, nginx):
    certbot = issue_all(acme, nginx, KILLED[:1])
    served, reloads = lab.served_cert_der(KILLED[0]), nginx.reloads()
    saved = lab.leaf_der(certbot.live(KILLED[0]))
    hook = killer_hook(certbot, "pre")  # before the new certificate exists
    proc = certbot.run("renew", "--force-renewal", "--no-random-sleep-on-renew", check=False)
    assert proc.returncode == -signal.SIGKILL, out(proc)
    os.unlink(hook)
    assert lab.leaf_der(certbot.live(KILLED[0])) == saved
    assert os.path.exists(owed_file(certbot))  # a renewal was under way
    proc = certbot.run("renew", "--no-random-sleep-on-renew", check=False)
    assert proc.returncode == 0, out(proc)
    # nginx serves what is live: nothing was owed after all.
    assert nginx.reloads() == reloads
    assert lab.served_cert_der(KILLED[0]) == served
    assert not os.path.exists(owed_file(certbot))


def test_dry_run_stopped_mid_way_undoes_its_location_as_it_exits(acme, nginx):
    """SIGTERM (`systemctl stop`, Ctrl-C is SIGINT): certbot runs the
    authenticator's cleanup on its way out, which undoes the location."""
    certbot = start(acme, nginx, "stopped.example")
    before = config_files(nginx)
    backend = lab.http_get("stopped.example", MARKER)
    running = certbot.start("certonly", "--dry-run", "-a", "nginx-webroot",
                            *certbot.plugin_args(), "-d", "stopped.example")
    deadline = time.monotonic() + 60
    while lab.http_get("stopped.example", MARKER) == backend:
        assert running.poll() is None and time.monotonic() < deadline
        time.sleep(0.005)
    running.send_signal(signal.SIGTERM)
    stdout, stderr = running.communicate()
    assert running.returncode != 0
    assert "Traceback" not in stdout + stderr
    assert config_files(nginx) == before
    assert lab.http_get("stopped.example", MARKER) == backend
    assert not os.path.exists(os.path.join(certbot.directory, "work", "temp_checkpoint"))


def test_renew_dry_run_killed_mid_way_is_undone_by_the_timers_next_run(acme, nginx):
    """The next run is usually the renewal timer's, with nothing due: it
    calls the installer for each lineage, which undoes what the killed dry
    run left."""
    certbot = start(acme, nginx, "timer.example")
    certbot.run("-a", "nginx-webroot", "-i", "nginx-webroot", *certbot.plugin_args(),
                "-d", "timer.example", "--no-redirect")
    drop_challenge_location(nginx, "timer.example")
    before, backend = config_files(nginx), lab.http_get("timer.example", MARKER)
    running = certbot.start("renew", "--dry-run", "--no-random-sleep-on-renew")
    deadline = time.monotonic() + 60
    while lab.http_get("timer.example", MARKER) == backend:
        assert running.poll() is None and time.monotonic() < deadline
        time.sleep(0.005)
    running.send_signal(signal.SIGKILL)
    running.communicate()
    assert config_files(nginx) != before
    proc = certbot.run("renew", "--no-random-sleep-on-renew", check=False)
    assert proc.returncode == 0, out(proc)
    assert "not yet due" in out(proc) and "interrupted certbot run" in out(proc)
    assert config_files(nginx) == before
    assert lab.http_get("timer.example", MARKER) == backend
