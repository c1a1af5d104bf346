"""Several nodes (issue 23) without ssh: the option's values, a node's
configuration read from its files' bytes, a node's edits written and put
back, and the fleet's all-or-nothing rules, with fake nodes handed in."""
import hashlib
import types

import configobj
import pytest

from certbot import errors

from certbot_nginx_webroot import plugin, probes
from certbot_nginx_webroot.config import ConfigError
from certbot_nginx_webroot.controllers import NginxError
from certbot_nginx_webroot.controllers.openssh import SshError
from certbot_nginx_webroot.controllers.remote_files import RemoteFileError, split_sized
from certbot_nginx_webroot.controllers.ssh import dumped_paths
from certbot_nginx_webroot.flows import fleet, node
from certbot_nginx_webroot.problems import NotInstalled, Problem


# -- the option ---------------------------------------------------------------

def test_node_option_keeps_what_certbot_stored():
    # argparse hands one destination; certbot's renewal hands the stored list
    assert plugin.node_option("web1") == "web1"
    assert plugin.node_option(["web1", "root@web2"]) == ["web1", "root@web2"]


@pytest.mark.parametrize("value, nodes", [
    (None, []),
    ([], []),
    ("web1", ["web1"]),
    (["web1", "web2"], ["web1", "web2"]),
    (["web1,web2", "web3"], ["web1", "web2", "web3"]),
    ("web1, web2,", ["web1", "web2"]),
    (["web1", "web1"], ["web1"]),
])
def test_node_list(value, nodes):
    assert plugin.node_list(value) == nodes


def test_the_option_is_repeatable_and_a_renewal_gets_the_same_list_back(tmp_path):
    added = {}
    plugin.NginxWebroot.add_parser_arguments(lambda name, **kw: added.setdefault(name, kw))
    assert added["node"]["action"] == "append" and added["node"]["default"] is None
    # certbot writes the list into the renewal configuration with configobj,
    # and casts what it reads back with the option's type
    for nodes in (["web1"], ["web1", "root@web2", "deploy@web3.example"]):
        path = str(tmp_path / "lineage.conf")
        stored = configobj.ConfigObj(path)
        stored["renewalparams"] = {"nginx_webroot_node": nodes}
        stored.write()
        value = configobj.ConfigObj(path)["renewalparams"]["nginx_webroot_node"]
        assert plugin.node_list(added["node"]["type"](value)) == nodes


# -- reading a node's configuration --------------------------------------------

@pytest.mark.parametrize("pattern, path, matches", [
    ("/etc/nginx/sites/*.conf", "/etc/nginx/sites/a.conf", True),
    ("/etc/nginx/sites/*.conf", "/etc/nginx/sites/deep/a.conf", False),  # * never crosses /
    ("/etc/nginx/*/a.conf", "/etc/nginx/sites/a.conf", True),
    ("/etc/nginx/site?.conf", "/etc/nginx/sites.conf", True),
    ("/etc/nginx/[ab].conf", "/etc/nginx/c.conf", False),
])
def test_glob_matches_as_glob_does(pattern, path, matches):
    assert node.glob_matches(pattern, path) is matches


MAIN = b"events {}\nhttp {\n    include sites/*.conf;\n    include /etc/nginx/extra.conf;\n}\n"


def node_files():
    return {
        "/etc/nginx/nginx.conf": MAIN,
        "/etc/nginx/sites/b.conf": b"server { listen 80; server_name b.example; }\n",
        "/etc/nginx/sites/a.conf": b"server { listen 80; server_name a.example; }\n",
        "/etc/nginx/extra.conf": b"server { listen 81; server_name c.example; }\n",
    }


def test_a_node_configuration_resolves_its_includes_among_its_own_files():
    config = node.NodeConfig.from_files("/etc/nginx/nginx.conf", node_files())
    names = [server.names for server in config.servers()]
    assert names == [("a.example",), ("b.example",), ("c.example",)]  # glob order, sorted
    assert config.read_digests["/etc/nginx/extra.conf"] == hashlib.sha256(
        node_files()["/etc/nginx/extra.conf"]).digest()


def test_an_include_of_a_file_the_node_lacks_is_an_error():
    files = node_files()
    del files["/etc/nginx/extra.conf"]
    config = node.NodeConfig.from_files("/etc/nginx/nginx.conf", files)
    with pytest.raises(ConfigError, match="extra.conf is not a file of this node"):
        config.servers()


def test_nginx_dump_paths_and_sized_reads():
    dump = ("# configuration file /etc/nginx/nginx.conf:\nhttp {}\n\n"
            "# configuration file /etc/nginx/a b.conf:\nserver {}\n"
            "# configuration file /etc/nginx/nginx.conf:\n")
    assert dumped_paths(dump) == ["/etc/nginx/nginx.conf", "/etc/nginx/a b.conf"]
    data = b"3\nabc0\n5\nx\ny\nz"
    assert split_sized(data, ["/a", "/b", "/c"], "web1") == {"/a": b"abc", "/b": b"",
                                                              "/c": b"x\ny\nz"}
    with pytest.raises(RemoteFileError, match="short answer"):
        split_sized(b"9\nabc", ["/a"], "web1")


# -- a node's edits ---------------------------------------------------------------

class FakeFiles:
    """A node's files, as RemoteFiles reaches them."""

    def __init__(self, files):
        self.files = dict(files)
        self.keys = {}
        self.fail_write = None

    def read_many(self, paths):
        return {p: self.files[p] for p in paths}

    def write(self, path, data, new_mode=0o644):
        if path == self.fail_write:
            raise RemoteFileError(f"cannot write {path}")
        self.files[path] = data

    def write_key(self, path, data):
        self.keys[path] = data

    def remove(self, path):
        self.files.pop(path, None)

    def digest(self, path):
        data = self.files.get(path, self.keys.get(path))
        return "" if data is None else hashlib.sha256(data).hexdigest()

    def make_directory(self, path):
        pass


class FakeNodeNginx:
    """A node's nginx: its files, nginx -t as told, reloads counted."""

    def __init__(self, name, files=None, refuses=lambda files: False):
        self.destination = name
        self.runner = None  # the store's ssh runner: not used here
        self.identity = ("ssh", name, "/etc/nginx/nginx.conf")
        self.main_conf = "/etc/nginx/nginx.conf"
        self.files = FakeFiles(node_files() if files is None else files)
        self.refuses = refuses
        self.tests = 0
        self.reloads = 0
        self.installed_error = None

    def config_files(self):
        return dict(self.files.files)

    def test(self):
        self.tests += 1
        if self.refuses(self.files.files):
            raise NginxError(f"{self.destination}: nginx -t failed: unknown directive")

    def check_installed(self):
        if self.installed_error is not None:
            raise self.installed_error

    def reload(self, timeout):
        self.reloads += 1

    def address(self):
        return f"10.0.0.{self.destination[-1]}"

    def nginx_path(self, path):
        return path

    local_path = nginx_path


def node_run(name, **kwargs):
    options = types.SimpleNamespace(http_port=80, https_port=443, webroot="/var/www/acme",
                                    dry_run=False, work_dir="/nonexistent")
    return node.NodeRun(options, FakeNodeNginx(name, **kwargs), probes, lambda line: None)


def edited(run, path="/etc/nginx/sites/a.conf", text="# ours\n"):
    config = run.config()
    config.files[path].children.clear()
    config.files[path] = node.parser.parse(text, path)
    config.mark_changed(path)
    return config


def test_a_node_edit_is_written_then_tested():
    run = node_run("web1")
    transaction = node.NodeTransaction(run, reload=lambda: None)
    transaction.save(edited(run), "edit")
    assert run.controller.files.files["/etc/nginx/sites/a.conf"] == b"# ours\n"
    assert run.controller.tests == 2  # as found, then as edited
    transaction.restore()
    assert run.controller.files.files == node_files()


def test_a_node_that_refuses_the_edit_gets_its_files_back():
    refuses = lambda files: files["/etc/nginx/sites/a.conf"] == b"# ours\n"  # noqa: E731
    run = node_run("web1", refuses=refuses)
    transaction = node.NodeTransaction(run, reload=lambda: None)
    with pytest.raises(Problem, match="web1: nginx -t failed.*on web1 was restored"):
        transaction.save(edited(run), "edit")
    assert run.controller.files.files == node_files()


def test_a_node_edit_proven_served_is_still_undone_until_the_fleet_keeps_it():
    run = node_run("web1")
    reloads = []
    transaction = node.NodeTransaction(run, reload=lambda: reloads.append(1))
    transaction.begin_pending(edited(run), "challenge location", temporary=False)
    transaction.finish_pending()  # this node serves the files
    transaction.undo_pending()  # another node refused
    assert run.controller.files.files == node_files() and len(reloads) == 2
    transaction.begin_pending(edited(run), "challenge location", temporary=False)
    transaction.finish_pending()
    transaction.keep()  # every node passed
    transaction.undo_pending()
    assert run.controller.files.files["/etc/nginx/sites/a.conf"] == b"# ours\n"
    assert len(reloads) == 3


def test_a_node_file_changed_meanwhile_is_not_overwritten():
    run = node_run("web1")
    config = edited(run)
    run.controller.files.files["/etc/nginx/sites/a.conf"] = b"# the admin's\n"
    with pytest.raises(Problem, match="a.conf on web1 changed while certbot was running"):
        node.NodeTransaction(run, reload=lambda: None).save(config, "edit")
    assert run.controller.files.files["/etc/nginx/sites/a.conf"] == b"# the admin's\n"


def test_a_node_whose_configuration_fails_already_is_not_touched_by_a_delivery(tmp_path):
    fullchain = tmp_path / "fullchain.pem"
    fullchain.write_bytes(b"cert")
    (tmp_path / "privkey.pem").write_bytes(b"key")
    broken = node_run("web1", refuses=lambda files: True)
    with pytest.raises(NginxError):
        broken.deliver({str(fullchain): ["a.example"]})
    assert str(fullchain) not in broken.controller.files.files
    working = node_run("web2")
    working.deliver({str(fullchain): ["a.example"]})
    assert working.controller.files.files[str(fullchain)] == b"cert"
    assert working.controller.files.keys == {str(tmp_path / "privkey.pem"): b"key"}


# -- the fleet: all or nothing --------------------------------------------------

def make_fleet(runs, renewing=False, make_node=fleet.Node):
    return fleet.FleetFlows(runs, lambda run: None, lambda create: "/nonexistent/snippet",
                            lambda: renewing, make_node=make_node)


def test_save_is_all_or_nothing_across_nodes():
    refuses = lambda files: files["/etc/nginx/sites/a.conf"] == b"# ours\n"  # noqa: E731
    runs = [node_run("web1"), node_run("web2"), node_run("web3", refuses=refuses)]
    flows = make_fleet(runs)
    for run in runs:
        edited(run)
    with pytest.raises(Problem, match="web3.*web1, web2 put back too"):
        flows.save("edit", temporary=False)
    for run in runs:
        assert run.controller.files.files == node_files(), run.destination


class FakeAuth:
    def __init__(self, name, log, fails=False):
        self.name, self.log, self.fails = name, log, fails
        self.adopted_webroot = None

    def perform(self, achalls):
        self.log.append(("perform", self.name))
        if self.fails:
            raise Problem("nginx does not serve the challenge files")
        return ["response"]

    def remove_files(self):
        self.log.append(("removed", self.name))

    def undo_pending(self):
        self.log.append(("undone", self.name))

    def keep(self):
        self.log.append(("kept", self.name))


def fake_node_maker(log, failing):
    def make_node(run, store, tls_snippet):
        auth = FakeAuth(run.destination, log, fails=run.destination in failing)
        return types.SimpleNamespace(run=run, auth=auth, transaction=auth,
                                     name=run.destination)
    return make_node


def test_perform_is_all_or_nothing_and_names_the_node():
    log = []
    flows = make_fleet([node_run(n) for n in ("web1", "web2", "web3")],
                       make_node=fake_node_maker(log, {"web2"}))
    with pytest.raises(Problem, match="^web2: nginx does not serve"):
        flows.perform([])
    assert log == [("perform", "web1"), ("perform", "web2"),
                   ("removed", "web1"), ("undone", "web1")]


class NoHttp:
    @staticmethod
    def fetch(*args, **kwargs):
        raise ConnectionRefusedError("refused")


class AnswersHttp:
    @staticmethod
    def fetch(*args, **kwargs):
        return 200, b"up"


def unreachable(message):
    err = NotInstalled(f"cannot drive nginx on web2: {message}")
    err.__cause__ = SshError(message)
    return err


def test_an_unknown_host_key_stops_before_any_node_is_asked_anything_else():
    runs = [node_run(n) for n in ("web1", "web2", "web3")]
    runs[1].controller.installed_error = unreachable(
        "ssh web2 failed: Host key verification failed.")
    with pytest.raises(NotInstalled, match="Host key verification failed.*CA was not asked"):
        make_fleet(runs).check()
    assert [run.controller.tests for run in runs] == [0, 0, 0]


def test_a_node_without_ssh_that_answers_http_stops_the_run():
    runs = [node_run(n) for n in ("web1", "web2")]
    runs[1].controller.installed_error = unreachable("ssh web2 failed: Connection refused")
    runs[1].net = AnswersHttp
    with pytest.raises(Problem, match="web2 answers HTTP on 10.0.0.2:80 but ssh cannot"):
        make_fleet(runs).check()


def test_a_node_answering_nothing_is_down_and_left_out_of_an_authentication():
    log = []
    runs = [node_run(n) for n in ("web1", "web2", "web3")]
    runs[1].controller.installed_error = unreachable("ssh web2 failed: No route to host")
    runs[1].net = NoHttp
    flows = make_fleet(runs, make_node=fake_node_maker(log, set()))
    flows.check()
    assert flows.down == ["web2"]
    flows.perform([])
    assert log == [("perform", "web1"), ("perform", "web3"), ("kept", "web1"), ("kept", "web3")]


def test_a_first_install_refuses_a_node_that_is_down():
    runs = [node_run(n) for n in ("web1", "web2")]
    flows = make_fleet(runs, renewing=False)
    flows.down = ["web2"]
    with pytest.raises(Problem, match="cannot install on web2, which is down"):
        flows.deploy_cert("a.example", "/x/cert.pem", "/x/privkey.pem", "/x/fullchain.pem")


# -- the edge ---------------------------------------------------------------------

def fleet_plugin(tmp_path, nodes, made):
    """The plugin with nodes named, each node's controller a fake (handed
    in as a callable node -> controller; made collects them)."""
    config = types.SimpleNamespace(
        nginx_webroot_server_root="/etc/nginx", nginx_webroot_ctl="nginx",
        nginx_webroot_path="/var/www/acme", nginx_webroot_node=nodes,
        nginx_webroot_ssh_config=None, http01_port=80, https_port=443,
        config_dir=str(tmp_path / "le"), work_dir=str(tmp_path / "work"),
        backup_dir=str(tmp_path / "work/backups"),
        temp_checkpoint_dir=str(tmp_path / "work/temp"),
        in_progress_dir=str(tmp_path / "work/progress"), strict_permissions=False,
        dry_run=False, verb="certonly")

    def controller(name):
        made[name] = FakeNodeNginx(name)
        return made[name]
    return plugin.NginxWebroot(config, "nginx-webroot", controller=controller)


def test_with_nodes_the_edge_drives_every_node(tmp_path):
    made = {}
    auth = fleet_plugin(tmp_path, ["web1", "web2,web3"], made)
    flows = auth._wired()
    assert isinstance(flows, fleet.FleetFlows)
    assert [run.destination for run in flows.runs] == ["web1", "web2", "web3"]
    auth.prepare()
    auth.config_test()
    assert [made[n].tests for n in ("web1", "web2", "web3")] == [1, 1, 1]
    assert sorted(auth.get_all_names()) == ["a.example", "b.example", "c.example"]


def test_the_edge_turns_a_refused_host_key_into_certbots_error(tmp_path):
    made = {}
    auth = fleet_plugin(tmp_path, ["web1", "web2"], made)
    auth._wired()
    made["web2"].installed_error = unreachable("ssh web2 failed: Host key verification failed.")
    with pytest.raises(errors.NoInstallationError, match="web2.*Host key verification"):
        auth.prepare()
    assert [made[n].tests for n in ("web1", "web2")] == [0, 0]


def test_a_node_that_has_the_same_file_already_is_not_written(tmp_path):
    """The machine running certbot as one of the nodes: certbot's own live
    files are at the very paths; they are not replaced (their symlinks kept)."""
    fullchain = tmp_path / "fullchain.pem"
    fullchain.write_bytes(b"cert")
    (tmp_path / "privkey.pem").write_bytes(b"key")
    run = node_run("web1")
    run.controller.files.files[str(fullchain)] = b"cert"
    run.controller.files.keys[str(tmp_path / "privkey.pem")] = b"key"
    run.controller.files.fail_write = str(fullchain)  # a write would fail the test
    run.deliver({str(fullchain): ["a.example"]})
    run.controller.files.keys.clear()
    run.deliver({str(fullchain): ["a.example"]})  # a key that differs is written
    assert run.controller.files.keys == {str(tmp_path / "privkey.pem"): b"key"}


class LocalShell:
    """Runs the remote scripts on this machine's sh, as ssh would on a node."""

    def run(self, destination, command, stdin=None):
        import subprocess
        return subprocess.run(command, input=stdin or b"", capture_output=True)


def test_the_remote_scripts_read_many_digest_and_remove_on_a_real_sh(tmp_path):
    from certbot_nginx_webroot.controllers.remote_files import RemoteFiles
    files = RemoteFiles(LocalShell(), "here")
    a, b, empty = tmp_path / "a.conf", tmp_path / "b c.conf", tmp_path / "empty"
    a.write_bytes(b"line\n\x00binary\n")
    b.write_bytes(b"no newline")
    empty.write_bytes(b"")
    assert files.read_many([str(a), str(empty), str(b)]) == {
        str(a): b"line\n\x00binary\n", str(empty): b"", str(b): b"no newline"}
    with pytest.raises(RemoteFileError):
        files.read_many([str(tmp_path / "missing")])
    assert files.digest(str(a)) == hashlib.sha256(a.read_bytes()).hexdigest()
    assert files.digest(str(tmp_path / "missing")) == ""
    link = tmp_path / "link"
    link.symlink_to(a)
    files.remove(str(link))  # a symlink is never removed through
    assert link.is_symlink()
    files.remove(str(a))
    assert not a.exists()
