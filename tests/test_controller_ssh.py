"""The ssh controller without ssh: a fake node answers the controller's
commands (reload, pid checks, nginx -t), the remote scripts themselves run
on this machine's sh (files, /proc), and OpenSsh runs a stand-in ssh
binary that records its arguments."""
import os
import shlex
import stat
import subprocess
import sys

import pytest

from certbot_nginx_webroot import controllers
from certbot_nginx_webroot.controllers import NginxError, NotRunning
from certbot_nginx_webroot.controllers import openssh, ssh
from certbot_nginx_webroot.controllers.remote_files import RemoteFileError, RemoteFiles
from certbot_nginx_webroot.problems import NotInstalled

BINARY = "/usr/sbin/nginx"
CONF = "/etc/nginx/nginx.conf"


def done(returncode=0, stdout=b"", stderr=b""):
    return subprocess.CompletedProcess([], returncode, stdout, stderr)


class FakeNode:
    """A node as the controller's commands see it: files, one nginx master
    with workers, and what nginx -t says.  A SIGHUP replaces the workers
    after `hup_steps` probes (old ones shutting down meanwhile)."""

    def __init__(self):
        self.files = {CONF: b"pid /run/nginx.pid;\nevents {}\n", "/run/nginx.pid": b"4242\n"}
        self.master = 4242
        self.exe = BINARY
        self.title = "nginx: master process /usr/sbin/nginx -c " + CONF + " "
        self.children = {4243: "nginx: worker process "}
        self.test_output = (0, b"nginx: configuration file /etc/nginx/nginx.conf test is "
                               b"successful\n")
        self.signals = []
        self.commands = []
        self.hup_steps = 0
        self.next_worker = 5000

    def run(self, destination, command, stdin=None):
        self.commands.append(command)
        if command[:2] == ["sh", "-c"]:
            script, args = command[2], command[4:]
            if script == ssh.PROBE_SCRIPT:
                return done(stdout=self.probe(int(args[1])).encode())
            if script == ssh.SIGNAL_SCRIPT:
                return self.signal(int(args[0]), args[1])
            if script == ssh.INSTALLED_SCRIPT:
                return done() if CONF in self.files else done(3, stderr=b"no nginx conf\n")
            if args and args[0] in self.files:  # READ_SCRIPT
                return done(stdout=self.files[args[0]])
            return done(3, stderr=f"no file {args[0]}\n".encode())
        if command[-1] == "-t":
            return done(self.test_output[0], stderr=self.test_output[1])
        if command[-1] == "-V":
            return done(stderr=b"nginx version: nginx/1.22.1\nconfigure arguments: "
                               b"--prefix=/usr/share/nginx --pid-path=/run/nginx.pid\n")
        raise AssertionError(f"unexpected command {command}")

    def config(self, destination):
        return {"hostname": "192.0.2.7", "user": "root"}

    def probe(self, pid):
        if pid != self.master:
            return f"binary {BINARY}\ngone\n"
        if self.hup_steps:
            self.hup_steps -= 1
            if not self.hup_steps:  # the new workers are up, the old ones leaving
                self.children = {old: title + "is shutting down"
                                 for old, title in self.children.items()}
                self.children[self.next_worker] = "nginx: worker process "
        lines = [f"binary {BINARY}", f"exe {self.exe}", f"title {self.title}"]
        lines += [f"child {pid} {title}" for pid, title in self.children.items()]
        return "\n".join(lines) + "\n"

    def signal(self, pid, exe):
        if pid != self.master or exe != self.exe:
            return done(3, stderr=b"pid is no longer nginx's master\n")
        self.signals.append(pid)
        self.hup_steps = 3
        return done()


@pytest.fixture
def node():
    return FakeNode()


def controller(node, destination="root@node1"):
    return ssh.SshNginx(destination, CONF, "nginx", runner=node)


def test_identity_names_the_destination_and_configuration(node):
    nginx = controller(node)
    assert nginx.identity == ("ssh", "root@node1", CONF)
    assert nginx.main_conf == CONF
    assert controllers.get("ssh") is ssh.SshNginx


@pytest.mark.parametrize("destination", ["", "-oProxyCommand=touch /tmp/x", "a b"])
def test_a_destination_ssh_could_take_for_an_option_is_refused(node, destination):
    with pytest.raises(NotInstalled):
        controller(node, destination)


def test_reload_signals_the_checked_master_and_waits_for_new_workers(node):
    controller(node).reload(timeout=5)
    assert node.signals == [4242]
    assert 5000 in node.children and "shutting down" in node.children[4243]
    # the probes went on until the new worker was there
    assert node.hup_steps == 0


def test_reload_of_a_master_that_never_starts_new_workers_times_out(node):
    node.signal = lambda pid, exe: (node.signals.append(pid), done())[1]
    with pytest.raises(NginxError) as err:
        controller(node).reload(timeout=0.3)
    assert "did not start workers" in str(err.value) and "root@node1" in str(err.value)


@pytest.mark.parametrize("change, says", [
    (lambda n: n.files.update({"/run/nginx.pid": b"999\n"}), "stale pid file"),
    (lambda n: n.files.update({"/run/nginx.pid": b""}), "is empty"),
    (lambda n: n.files.update({"/run/nginx.pid": b"1\n"}), "holds '1'"),
    (lambda n: n.files.pop("/run/nginx.pid"), "cannot read /run/nginx.pid"),
    (lambda n: setattr(n, "exe", "/usr/bin/python3"), "is not an nginx master process"),
    (lambda n: setattr(n, "exe", "/opt/other/nginx"), "the master of /opt/other/nginx"),
])
def test_nothing_is_signalled_unless_the_pid_file_names_this_nginxs_master(node, change, says):
    change(node)
    if node.exe == "/usr/bin/python3":
        node.title = "python3 app.py "
    with pytest.raises(NotRunning) as err:
        controller(node).reload(timeout=2)
    assert says in str(err.value) and str(err.value).startswith("root@node1: ")
    assert node.signals == []


def test_pid_path_falls_back_to_the_compiled_default(node):
    node.files[CONF] = b"events {}\n"
    assert controller(node).pid_path() == "/run/nginx.pid"
    assert controller(node).prefix() == "/usr/share/nginx"


def test_config_test_failure_names_the_node_and_nginxs_complaint(node):
    node.test_output = (1, b"nginx: [emerg] unknown directive \"proxy_passs\" in "
                           b"/etc/nginx/sites/a.conf:3\nnginx: configuration file "
                           b"/etc/nginx/nginx.conf test failed\n")
    with pytest.raises(NginxError) as err:
        controller(node).test()
    assert str(err.value) == ('root@node1: nginx -t failed: nginx: [emerg] unknown directive '
                              '"proxy_passs" in /etc/nginx/sites/a.conf:3')


def test_check_installed_says_what_is_missing_on_which_node(node):
    del node.files[CONF]
    with pytest.raises(NotInstalled) as err:
        controller(node).check_installed()
    assert str(err.value).startswith("root@node1: ")


def test_an_ssh_failure_is_not_installed_with_sshs_reason(node):
    def refuse(destination, command, stdin=None):
        raise openssh.SshError(f"ssh {destination} failed: Host key verification failed.")
    node.run = refuse
    with pytest.raises(NotInstalled) as err:
        controller(node).check_installed()
    assert "Host key verification failed" in str(err.value)


@pytest.mark.parametrize("addr, reached", [
    ("*", "192.0.2.7"), ("[::]", "192.0.2.7"), ("127.0.0.1", "192.0.2.7"),
    ("[::1]", "192.0.2.7"), ("198.51.100.4", "198.51.100.4"),
])
def test_reach_is_the_nodes_own_address_for_wildcards(node, addr, reached):
    assert controller(node).reach(addr, 443) == (reached, 443)


def test_an_ipv6_host_is_reached_in_listen_notation():
    assert ssh.address_of({"hostname": "2001:db8::7"}) == "[2001:db8::7]"
    assert ssh.address_of({"hostname": "node1.example"}) == "node1.example"


def test_reload_done_waits_for_a_new_worker_and_for_every_old_one_to_leave():
    before = {10, 11}
    assert not ssh.reload_done(before, {10: "nginx: worker process", 11: "nginx: worker process"})
    assert not ssh.reload_done(before, {10: "nginx: worker process", 12: "nginx: worker process"})
    assert ssh.reload_done(before, {10: "nginx: worker process is shutting down",
                                    12: "nginx: worker process"})
    assert ssh.reload_done(before, {12: "nginx: worker process"})


# The remote scripts, run by this machine's sh: the same argv the node gets.
class LocalShell:
    def __init__(self):
        self.commands = []

    def run(self, destination, command, stdin=None):
        self.commands.append(command)
        return subprocess.run(command, input=stdin or b"", capture_output=True)


def test_write_keeps_an_existing_files_mode_and_replaces_it_by_rename(tmp_path):
    path = tmp_path / "fullchain.pem"
    path.write_bytes(b"old")
    os.chmod(path, 0o640)
    inode = path.stat().st_ino
    RemoteFiles(LocalShell(), "node1").write(str(path), b"new chain\n")
    assert path.read_bytes() == b"new chain\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.stat().st_ino != inode  # a new file renamed over: never half written
    assert os.listdir(tmp_path) == ["fullchain.pem"]


def test_a_new_file_gets_the_mode_asked(tmp_path):
    path = tmp_path / "chain.pem"
    RemoteFiles(LocalShell(), "node1").write(str(path), b"x", new_mode=0o644)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_key_is_0600_and_owned_by_root_even_over_a_readable_file(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("chown to root needs root")
    path = tmp_path / "privkey.pem"
    path.write_bytes(b"old")
    os.chmod(path, 0o644)
    os.chown(path, 65534, 65534)
    shell = LocalShell()
    RemoteFiles(shell, "node1").write_key(str(path), b"KEY")
    assert path.read_bytes() == b"KEY"
    info = path.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600 and (info.st_uid, info.st_gid) == (0, 0)


def test_the_temporary_file_is_private_before_the_content_is_written(tmp_path):
    """The script's order, checked on a copy that stops after writing the
    content: the temporary file then is 0600 whatever the caller's umask."""
    from certbot_nginx_webroot.controllers import remote_files
    script = (remote_files.WRITE_SCRIPT.split('if [ "$mode" = keep ]')[0]
              + 'stat -c "%a %n" -- "$tmp"\n')
    old = os.umask(0)
    try:
        proc = subprocess.run(["sh", "-c", script, "sh", str(tmp_path / "privkey.pem"),
                               "600", "", "600"], input=b"KEY", capture_output=True)
    finally:
        os.umask(old)
    mode, tmp = proc.stdout.decode().split()
    assert mode == "600"
    assert os.path.dirname(tmp) == str(tmp_path)  # same directory: rename is atomic
    assert not os.path.exists(tmp)  # and a write that stops removes it


def test_a_failed_write_leaves_the_file_and_no_temporary_file(tmp_path):
    path = tmp_path / "cert.pem"
    path.write_bytes(b"old")
    with pytest.raises(RemoteFileError) as err:
        RemoteFiles(LocalShell(), "node1")._write(str(path), b"new", "bogus-mode", "", 0o644)
    assert "cannot write" in str(err.value) and "node1" in str(err.value)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["cert.pem"]


def test_a_symlink_is_not_replaced(tmp_path):
    target = tmp_path / "target"
    target.write_bytes(b"keep")
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(RemoteFileError):
        RemoteFiles(LocalShell(), "node1").write(str(tmp_path / "link"), b"x")
    assert target.read_bytes() == b"keep"


def test_read_of_a_missing_file_names_it(tmp_path):
    with pytest.raises(RemoteFileError) as err:
        RemoteFiles(LocalShell(), "node1").read(str(tmp_path / "nope"))
    assert f"no file {tmp_path}/nope" in str(err.value)


def test_the_probe_script_reads_proc_of_a_real_process():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        proc = LocalShell().run("node1", ["sh", "-c", ssh.PROBE_SCRIPT, "sh", "sh",
                                          str(os.getpid())])
        facts = ssh.parse_probe(proc.stdout.decode())
        assert facts.running and facts.exe == os.path.realpath(sys.executable)
        assert child.pid in facts.children and "time.sleep(30)" in facts.children[child.pid]
        assert facts.binary == os.path.realpath(subprocess.check_output(
            ["sh", "-c", "command -v sh"]).decode().strip())
        assert ssh.master_problem(facts).startswith("is not an nginx master process")
    finally:
        child.kill()
        child.wait()
    gone = ssh.parse_probe(LocalShell().run(
        "node1", ["sh", "-c", ssh.PROBE_SCRIPT, "sh", "sh", str(child.pid)]).stdout.decode())
    assert not gone.running


# OpenSsh with a stand-in ssh binary.
@pytest.fixture
def fake_ssh(tmp_path):
    """An executable that records its argv and exits as $FAKE_SSH_EXIT says."""
    path = tmp_path / "ssh"
    path.write_text("#!/bin/sh\nprintf '%s\\n' \"$@\" END >> \"$0.argv\"\n"
                    "echo 'Host key verification failed.' >&2\nexit ${FAKE_SSH_EXIT:-0}\n")
    path.chmod(0o755)
    return path


def test_our_options_come_first_so_no_configuration_overrides_them(fake_ssh):
    runner = openssh.OpenSsh(str(fake_ssh), options=["-F", "/lab/ssh_config",
                                                 "-o", "StrictHostKeyChecking=no"])
    runner.run("root@node1", ["cat", "/etc/nginx/it's here.conf"])
    [argv] = calls(fake_ssh)
    assert argv[:5] == ["-T", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]
    assert argv[5:8] == ["-F", "/lab/ssh_config", "-o"]
    assert argv[-3:-1] == ["--", "root@node1"]
    assert shlex.split(argv[-1]) == ["cat", "/etc/nginx/it's here.conf"]


def calls(fake_ssh):
    """The argv of each run of the stand-in ssh."""
    text = (fake_ssh.parent / "ssh.argv").read_text()
    return [call.strip("\n").split("\n") for call in text.split("END\n") if call.strip()]


def test_shared_connections_start_one_master_per_node_and_close_it(fake_ssh):
    runner = openssh.OpenSsh(str(fake_ssh), share_connections=True)
    runner.run("node1", ["true"])
    runner.run("node1", ["true"])
    runner.run("node2", ["true"])
    master1, first, second, master2, third = calls(fake_ssh)
    path1 = next(a for a in master1 if a.startswith("ControlPath="))
    path2 = next(a for a in master2 if a.startswith("ControlPath="))
    assert master1[:5] == list(openssh.SSH_OPTIONS)  # a master refuses unknown keys too
    assert "ControlMaster=yes" in master1 and master1[-3:] == ["-f", "--", "node1"]
    assert "ControlMaster=yes" in master2 and path1 != path2
    for call, path in ((first, path1), (second, path1), (third, path2)):
        assert "ControlMaster=no" in call and path in call
    directory = os.path.dirname(path1.split("=", 1)[1])
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    runner.close()
    exits = calls(fake_ssh)[5:]
    assert sorted(call[-1] for call in exits) == ["node1", "node2"]
    assert all("-O" in call and "exit" in call for call in exits)
    assert not os.path.exists(directory)


def test_sshs_own_failure_is_an_ssh_error_with_its_reason(fake_ssh, monkeypatch):
    monkeypatch.setenv("FAKE_SSH_EXIT", "255")
    with pytest.raises(openssh.SshError) as err:
        openssh.OpenSsh(str(fake_ssh)).run("node1", ["true"])
    assert str(err.value) == "ssh node1 failed: Host key verification failed."


def test_ssh_config_output_is_read_first_value_first():
    assert openssh.parse_ssh_config("hostname 10.0.0.5\nuser root\nHostName other\n") == {
        "hostname": "10.0.0.5", "user": "root"}
