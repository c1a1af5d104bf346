"""Fault injection: hostile input and broken surroundings.

Where the fault is in nginx or certbot's surroundings, the case runs end to
end in the lab (real certbot, pebble and nginx).  Each asserts what a fault
must leave behind: certbot names the cause in one line with no traceback;
every file under the server root is byte-identical unless the run
succeeded; nginx's master is the same process and serves what it served;
nothing the run created lies outside the webroot; no process but nginx's
master got a signal.  Faults inside the plugin's own writing (a rename
failing half-way) are injected into the plugin with nginx faked.
"""
import os
import socket
import subprocess
import threading
import time

import pytest
from certbot import errors

import lab
from certbot_nginx_webroot import config as nginx_config
from test_plugin import fake  # noqa: F401 - a fixture
from test_plugin import PROXY, achall, make_plugin, snapshot, write_conf



def e2e(test):
    """An end-to-end case: real certbot, pebble and nginx."""
    test = pytest.mark.e2e(test)
    return pytest.mark.skipif(bool(lab.missing_tools()) and not os.environ.get("CI"),
                              reason=f"end-to-end tools missing: {lab.missing_tools()}")(test)


@pytest.fixture
def bystander():
    """A process that is not nginx; a SIGHUP (or SIGQUIT) would end it."""
    proc = subprocess.Popen(["sleep", "120"])
    yield proc
    proc.kill()
    proc.wait()


# Under the lab's prefix (the server root) but not configuration: nginx's
# own logs and temp files, the webroot, and certbot's state.
NOT_CONFIG = ("logs", "tmp", "webroot", "www", "certbot", "certbot2", "nginx.pid")


def server_root_files(nginx):
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


def site(name, listen="{http}"):
    return ("server {\n    listen %s;\n    server_name %s;\n"
            "    location / { proxy_pass http://127.0.0.1:{backend}; }\n}\n" % (listen, name))


class Scene:
    """What the lab looks like before a fault, to compare with after."""

    def __init__(self, nginx, name):
        self.nginx = nginx
        self.name = name
        self.files = server_root_files(nginx)
        self.master = nginx.master_pid()
        self.reloads = nginx.reloads()
        self.http = lab.http_get(name, "/")
        self.cert = served_cert_or_none(name)

    def unchanged(self, proc, cause):
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0, out
        assert [line for line in out.splitlines() if cause in line], out
        assert "Traceback" not in out and "An unexpected error" not in out, out
        assert "failed to restore" not in out, out
        assert server_root_files(self.nginx) == self.files
        assert self.nginx.master_pid() == self.master
        assert self.nginx.reloads() == self.reloads
        assert lab.http_get(self.name, "/") == self.http
        assert served_cert_or_none(self.name) == self.cert
        return out


def served_cert_or_none(name):
    try:
        return lab.served_cert_der(name)
    except OSError:
        return None


def certbot_for(acme, nginx, *sites):
    for n, text in enumerate(sites):
        nginx.write(f"sites/site{n}.conf", text)
    nginx.start()
    return lab.Certbot(os.path.join(nginx.prefix, "certbot"), acme, nginx)


def issue(certbot, name, *extra):
    return certbot.run("-a", "nginx-webroot", "-i", "nginx-webroot", *certbot.plugin_args(),
                       "-d", name, "--no-redirect", *extra, check=False)


def write_pid_file(nginx, text):
    with open(os.path.join(nginx.prefix, "nginx.pid"), "w") as f:
        f.write(text)


@e2e
def test_renewal_with_a_pid_file_naming_no_nginx_master_signals_nothing(
        acme, nginx, bystander):
    certbot = certbot_for(acme, nginx, site("pid.example"))
    assert issue(certbot, "pid.example").returncode == 0
    scene = Scene(nginx, "pid.example")
    # A stale pid file whose pid now belongs to another process, and -1
    # (every process).  test_controller_local tries 0, 1, +1, 1_0 and more.
    for text in (f"{bystander.pid}\n", "-1"):
        write_pid_file(nginx, text)
        try:
            proc = certbot.run("renew", "--force-renewal", "--no-random-sleep-on-renew",
                               check=False)
        finally:
            write_pid_file(nginx, f"{scene.master}\n")
        scene.unchanged(proc, "nothing was signalled")
        time.sleep(0.1)
        assert bystander.poll() is None  # alive: no SIGHUP reached it


@e2e
@pytest.mark.parametrize("link", [".well-known", ".well-known/acme-challenge"])
def test_a_symlink_under_the_webroot_is_not_written_through(acme, nginx, tmp_path, link):
    certbot = certbot_for(acme, nginx, site("link.example"))
    scene = Scene(nginx, "link.example")
    outside = tmp_path / "outside"
    outside.mkdir()
    target = os.path.join(nginx.webroot, link)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    os.symlink(outside, target)
    scene.unchanged(issue(certbot, "link.example"), "is a symlink; not writing through it")
    assert os.listdir(outside) == []


@e2e
def test_a_webroot_that_is_not_a_directory(acme, nginx):
    certbot = certbot_for(acme, nginx, site("file.example"))
    scene = Scene(nginx, "file.example")
    os.rmdir(nginx.webroot)
    with open(nginx.webroot, "w") as f:
        f.write("not a directory\n")
    scene.unchanged(issue(certbot, "file.example"), f"{nginx.webroot} is not a directory")


@e2e
def test_the_challenge_location_serves_only_plain_text_files(acme, nginx):
    certbot = certbot_for(acme, nginx, site("plain.example"))
    assert issue(certbot, "plain.example").returncode == 0
    challenge_dir = os.path.join(nginx.webroot, ".well-known", "acme-challenge")
    os.makedirs(challenge_dir, exist_ok=True)  # the run removed what it made
    with open(os.path.join(challenge_dir, "x.html"), "w") as f:
        f.write("<script>alert(1)</script>\n")
    secret = os.path.join(nginx.prefix, "www", "secret")
    with open(secret, "w") as f:
        f.write("secret\n")
    os.chmod(secret, 0o644)
    os.symlink(secret, os.path.join(challenge_dir, "link"))
    with socket.create_connection(("127.0.0.1", lab.HTTP_PORT)) as sock:
        sock.sendall(b"GET /.well-known/acme-challenge/x.html HTTP/1.0\r\n"
                     b"Host: plain.example\r\n\r\n")
        head = sock.makefile("rb").read().split(b"\r\n\r\n")[0]
    assert b"200 OK" in head and b"Content-Type: text/plain" in head
    status, body = lab.http_get("plain.example", "/.well-known/acme-challenge/link")
    assert status in (403, 404) and b"secret" not in body


@e2e
def test_an_include_loop_is_named_with_file_and_line(acme, nginx):
    certbot = certbot_for(acme, nginx, site("loop.example"))
    # The admin adds the loop after nginx started (nginx would refuse it).
    loop = nginx.write("sites/loop.inc", "# loops\ninclude sites/loop.inc;\n")
    with open(os.path.join(nginx.prefix, "sites/site0.conf"), "a") as f:
        f.write("include sites/loop.inc;\n")
    scene = Scene(nginx, "loop.example")
    scene.unchanged(issue(certbot, "loop.example"), f"include loop: {loop}:2 -> {loop}")


@e2e
def test_a_config_broken_before_the_plugin_touches_it(acme, nginx):
    certbot = certbot_for(acme, nginx, site("typo.example"))
    path = nginx.write("sites/typo.conf", "server {\n    listen {http};\n"
                       "    server_name other.example;\n    proxy_passs x;\n}\n")
    scene = Scene(nginx, "typo.example")
    out = scene.unchanged(issue(certbot, "typo.example"), "already fails before any change")
    assert f'unknown directive "proxy_passs" in {path}:4' in out


@e2e
def test_a_program_that_is_not_http_on_loopback_is_no_crash(acme, nginx):
    # The site listens on 127.0.0.2; on 127.0.0.1 something else answers,
    # not in HTTP.  The CA reaches the site (its DNS says 127.0.0.2).
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", lab.HTTP_PORT))
    listener.listen(16)
    listener.settimeout(0.2)
    stop = threading.Event()

    def answer():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    acme.resolve("nothttp.example", "127.0.0.2")
    try:
        certbot = certbot_for(acme, nginx, site("nothttp.example", "127.0.0.2:{http}"))
        proc = issue(certbot, "nothttp.example", "--https-port", str(lab.HTTPS_PORT))
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out
        assert "Traceback" not in out and "BadStatusLine" not in out
        assert lab.served_cert_der("nothttp.example", host="127.0.0.2") == \
            lab.leaf_der(certbot.live("nothttp.example"))
    finally:
        acme.resolve("nothttp.example", None)
        stop.set()
        thread.join()
        listener.close()


@e2e
def test_install_while_nginx_is_stopped_is_undone_and_says_so(acme, nginx):
    certbot = certbot_for(acme, nginx, site("down.example"))
    certbot.run("certonly", "-a", "nginx-webroot", *certbot.plugin_args(),
                "-d", "down.example")
    nginx.stop(remove=False)
    before = server_root_files(nginx)
    proc = certbot.run("install", "--cert-name", "down.example", "-i", "nginx-webroot",
                       *certbot.installer_args(), "--no-redirect", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert [line for line in out.splitlines() if "nginx is not running" in line], out
    assert "successfully restored your server" in out and "failed to restore" not in out
    assert "Traceback" not in out
    assert server_root_files(nginx) == before
    # nothing started (`nginx -t` leaves an empty pid file when none runs)
    pid_file = os.path.join(nginx.prefix, "nginx.pid")
    assert not os.path.exists(pid_file) or os.path.getsize(pid_file) == 0


@e2e
def test_a_missing_binary_is_named(acme, nginx, tmp_path):
    certbot = certbot_for(acme, nginx, site("nobin.example"))
    scene = Scene(nginx, "nobin.example")
    proc = certbot.run("-a", "nginx-webroot", "-i", "nginx-webroot",
                       "--nginx-webroot-server-root", nginx.prefix,
                       "--nginx-webroot-ctl", str(tmp_path / "nginx"),
                       "--nginx-webroot-path", nginx.webroot, "-d", "nobin.example",
                       check=False)
    scene.unchanged(proc, f"{tmp_path / 'nginx'}")


@e2e
def test_a_missing_server_root_is_named(acme, nginx, tmp_path):
    certbot = certbot_for(acme, nginx, site("noroot.example"))
    scene = Scene(nginx, "noroot.example")
    proc = certbot.run("-a", "nginx-webroot", "-i", "nginx-webroot",
                       "--nginx-webroot-server-root", str(tmp_path / "etc-nginx"),
                       "--nginx-webroot-ctl", lab.nginx_binary(),
                       "--nginx-webroot-path", nginx.webroot, "-d", "noroot.example",
                       check=False)
    scene.unchanged(proc, f"{tmp_path / 'etc-nginx'}")


@e2e
def test_two_concurrent_runs_lose_no_edit(acme, nginx):
    # Two names in one file, each run with its own certbot directories (so
    # certbot's own locks do not serialize them).
    names = ["one.example", "two.example"]
    certbots = [certbot_for(acme, nginx, site(names[0]) + site(names[1]))]
    certbots.append(lab.Certbot(os.path.join(nginx.prefix, "certbot2"), acme, nginx))
    running = [c.start("-a", "nginx-webroot", "-i", "nginx-webroot", *c.plugin_args(),
                       "-d", name, "--no-redirect") for c, name in zip(certbots, names)]
    results = [(p.wait(), *p.communicate()) for p in running]
    for (code, out, err), certbot, name in zip(results, certbots, names):
        if code != 0:  # lost the race for the lock: said so, and changed nothing
            lines = [line for line in (out + err).splitlines() if "cannot lock" in line]
            assert lines and "Traceback" not in out + err, out + err
            assert certbot.run("-a", "nginx-webroot", "-i", "nginx-webroot",
                               *certbot.plugin_args(), "-d", name, "--no-redirect",
                               check=False).returncode == 0
    # Both edits are there, and each name is served its certificate.
    with open(os.path.join(nginx.prefix, "sites/site0.conf")) as f:
        text = f.read()
    # each :80 block, which now serves HTTPS itself (issue 20 C5: no copy)
    assert text.count("location ^~ /.well-known/acme-challenge/") == 2
    assert text.count(f"listen {lab.HTTPS_PORT} ssl") == 2
    for certbot, name in zip(certbots, names):
        assert lab.served_cert_der(name) == lab.leaf_der(certbot.live(name))
    assert not os.path.exists(os.path.join(nginx.prefix, ".certbot.lock"))


# -- faults in the plugin's own writing (nginx faked) -------------------------

def test_a_rename_failing_half_way_through_two_files_restores_both(
        tmp_path, fake, monkeypatch):
    root = write_conf(tmp_path, {"a.conf": PROXY,
                                 "b.conf": PROXY.replace("a.example", "b.example")})
    before = snapshot(root)
    real = nginx_config.write_atomic
    calls = []

    def second_fails(path, data):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(path, data)
    monkeypatch.setattr(nginx_config, "write_atomic", second_fails)
    with pytest.raises(errors.PluginError) as err:
        make_plugin(tmp_path).perform([achall("a.example"), achall("b.example", 2)])
    assert "No space left on device" in str(err.value)
    assert "the configuration was restored" in str(err.value)
    assert len(calls) == 2 and snapshot(root) == before and fake.reloads == 0
    assert not (tmp_path / "webroot/.well-known").exists()
