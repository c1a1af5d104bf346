"""The run-wide state behind one reload per `certbot renew` run: the batch
(flows/batch.py), the reloads owed on disk (flows/owed.py), and the
edge's choice of the run's last lineage."""
import json
import os
import types

import pytest

from certbot_nginx_webroot import plugin
from certbot_nginx_webroot.flows import batch, owed


@pytest.fixture(autouse=True)
def fresh_run():
    owed.reset()
    yield
    owed.reset()


def nginx_run(*identity):
    """A Run of the nginx with identity, as the batch sees it."""
    return types.SimpleNamespace(controller=types.SimpleNamespace(identity=identity))


def test_lineages_of_one_nginx_are_flushed_together_once():
    calls = []
    run_batch = batch.RenewalBatch(
        lambda run, lineages, expected: calls.append((list(lineages), dict(expected))))
    one = nginx_run("local", "nginx", "/etc/nginx/nginx.conf")
    assert run_batch.add(one, "a", {"a.example": "/a"})
    # Another plugin object (certbot makes one per lineage) for the same nginx.
    assert not run_batch.add(nginx_run("local", "nginx", "/etc/nginx/nginx.conf"), "b",
                             {"b.example": "/b", "www.b.example": "/b"})
    assert run_batch.lineages() == ["a", "b"]
    run_batch.flush_all()
    assert calls == [(["a", "b"], {"a.example": "/a", "b.example": "/b",
                                   "www.b.example": "/b"})]
    assert run_batch.lineages() == []
    run_batch.flush_all()  # nothing left: no second reload
    assert len(calls) == 1


def test_each_nginx_is_flushed_and_a_failure_is_raised_after_the_others():
    calls = []

    def go_live(run, lineages, expected):
        calls.append(run.controller.identity[-1])
        if run.controller.identity[-1] == "/one/nginx.conf":
            raise RuntimeError("nginx -t failed")

    run_batch = batch.RenewalBatch(go_live)
    run_batch.add(nginx_run("local", "nginx", "/one/nginx.conf"), "a", {"a.example": "/a"})
    run_batch.add(nginx_run("local", "nginx", "/two/nginx.conf"), "b", {"b.example": "/b"})
    with pytest.raises(RuntimeError, match="nginx -t failed"):
        run_batch.flush_all()
    assert calls == ["/one/nginx.conf", "/two/nginx.conf"]
    assert run_batch.lineages() == []  # reported once, not retried at exit


def test_the_last_lineage_is_the_named_one_or_the_last_conf_by_name(tmp_path):
    for name in ("b.example", "a.example", "c.example"):
        (tmp_path / f"{name}.conf").write_text("")
    (tmp_path / "z.example.conf.bak").write_text("")  # certbot reads *.conf only
    assert plugin.last_lineage(str(tmp_path), None) == "c.example"
    assert plugin.last_lineage(str(tmp_path), "a.example") == "a.example"
    assert plugin.last_lineage(str(tmp_path / "missing"), None) is None


KEY = ("local", "nginx", "/etc/nginx/nginx.conf")


def test_an_owed_reload_is_kept_on_disk_atomically_for_root_only(tmp_path):
    path = str(tmp_path / owed.STATE_NAME)
    owed.remember_at(path, KEY, ["www.a.example", "a.example"])  # before the save
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    owed.remember_at(path, KEY, ["a.example", "www.a.example"], "/le/live/a/fullchain.pem")
    data = json.loads(open(path).read())
    # The saved certificate takes the place of the entry that had only names.
    assert data["reloads"] == [{"ctl": "nginx", "conf": "/etc/nginx/nginx.conf", "lineages": [
        {"names": ["a.example", "www.a.example"], "fullchain": "/le/live/a/fullchain.pem"}]}]
    assert [p.name for p in tmp_path.iterdir()] == [owed.STATE_NAME]  # no temp file left
    # This process wrote it: nothing was left by an earlier run.
    assert not owed.left_at(path, KEY, "/le/live/a/fullchain.pem",
                                               ["a.example"])
    owed.forget_at(path, KEY, {"/le/live/a/fullchain.pem": ["a.example", "www.a.example"]})
    assert not os.path.exists(path)  # nothing owed, no file


def test_the_next_process_sees_what_an_earlier_run_left(tmp_path):
    path = str(tmp_path / owed.STATE_NAME)
    owed.remember_at(path, KEY, ["a.example"], "/le/live/a/fullchain.pem")
    owed.remember_at(path, KEY, ["b.example"])  # killed before b was saved
    owed.reset()  # a new certbot process
    assert owed.left_at(path, KEY, "/le/live/a/fullchain.pem", ["a.example"])
    assert owed.left_at(path, KEY, "/le/live/b/fullchain.pem", ["b.example"])
    assert not owed.left_at(path, KEY, "/le/live/c/fullchain.pem",
                                               ["c.example"])
    assert not owed.left_at(path, ("local", "nginx", "/other/nginx.conf"),
                                               "/le/live/a/fullchain.pem", ["a.example"])
    owed.forget_at(path, KEY, {"/le/live/a/fullchain.pem": ["a.example"]})
    assert not owed.left_at(path, KEY, "/le/live/a/fullchain.pem",
                                               ["a.example"])
    owed.reset()
    assert owed.left_at(path, KEY, "/le/live/b/fullchain.pem", ["b.example"])


def test_an_unreadable_state_file_is_ignored_and_replaced(tmp_path, caplog):
    path = tmp_path / owed.STATE_NAME
    path.write_text("{not json")
    assert not owed.left_at(str(path), KEY, "/f", ["a.example"])
    assert "cannot be read" in caplog.text
    owed.remember_at(str(path), KEY, ["a.example"])
    assert json.loads(path.read_text())["format"] == owed.STATE_FORMAT
