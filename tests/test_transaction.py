"""The edit transaction on its own, with its checkpoints and nginx faked
(handed in): the order of test, write, test, and the undo on failure."""
import types

import pytest

from certbot_nginx_webroot import edit
from certbot_nginx_webroot.config import Config
from certbot_nginx_webroot.controllers import NginxError
from certbot_nginx_webroot.flows.run import Run
from certbot_nginx_webroot.flows.transaction import EditTransaction
from certbot_nginx_webroot.problems import Problem


class Checkpoints:
    """Records what the transaction asks of certbot's Reverter; recover puts
    back the text the files had when they were added."""

    def __init__(self):
        self.calls = []
        self.saved = {}

    def add(self, paths, notes, temporary):
        self.calls.append(("add", sorted(paths), temporary))
        for path in paths:
            with open(path, "rb") as f:
                self.saved[path] = f.read()

    def register_creation(self, temporary, *paths):
        self.calls.append(("create", sorted(paths), temporary))

    def finalize(self, title):
        self.calls.append(("finalize", title))

    def recover(self):
        self.calls.append(("recover",))
        self.found = {}  # what recover found written
        for path, text in self.saved.items():
            with open(path, "rb") as f:
                self.found[path] = f.read()
            with open(path, "wb") as f:
                f.write(text)

    def revert_temporary(self, context):
        self.calls.append(("revert_temporary",))


class Nginx:
    """nginx -t results, one per call (True: passes)."""

    def __init__(self, conf, *results):
        self.main_conf = conf
        self.results = list(results)
        self.tests = 0

    def local_path(self, path):
        return path

    def test(self):
        self.tests += 1
        if not self.results.pop(0):
            raise NginxError("nginx -t failed: unknown directive")


def edited(tmp_path, *results):
    conf = tmp_path / "nginx.conf"
    conf.write_text("events {}\nhttp {\n    server {\n        listen 80;\n    }\n}\n")
    nginx = Nginx(str(conf), *results)
    run = Run(types.SimpleNamespace(), nginx, net=None)
    reloads = []
    tx = EditTransaction(run, Checkpoints(), lambda: reloads.append(1))
    config = run.config()
    server = config.server_blocks()[0]
    edit.insert(server, len(server.children), "server_name a.example;", "\n", str(conf))
    config.mark_changed(server)
    return conf, run, tx, config, reloads


def test_a_failing_test_after_the_write_puts_every_file_back(tmp_path):
    conf, run, tx, config, reloads = edited(tmp_path, True, False)
    before = conf.read_bytes()
    with pytest.raises(Problem, match="nginx -t failed: unknown directive; the configuration "
                                      "was restored"):
        tx.save(config, "install", finalize=True)
    assert b"server_name a.example;" in tx.checkpoints.found[str(conf)]  # it was written
    assert conf.read_bytes() == before
    assert [c[0] for c in tx.checkpoints.calls] == ["add", "recover"]  # never finalized
    assert not run.parsed  # the edited tree is dropped with the write


def test_a_configuration_that_fails_already_is_not_written(tmp_path):
    conf, run, tx, config, reloads = edited(tmp_path, False)
    before = conf.read_bytes()
    with pytest.raises(Problem, match="already fails before any change"):
        tx.save(config, "install", finalize=True)
    assert conf.read_bytes() == before and tx.checkpoints.calls == []


def test_a_pending_edit_is_kept_once_finished_and_undone_otherwise(tmp_path):
    conf, run, tx, config, reloads = edited(tmp_path, True, True)
    tx.begin_pending(config, "challenge location", temporary=False)
    assert (tx.pending, reloads) == ("challenge location", [1])
    tx.undo_pending()
    assert tx.pending is None and reloads == [1, 1]
    assert ("recover",) in tx.checkpoints.calls
    assert ("finalize", "challenge location") not in tx.checkpoints.calls
