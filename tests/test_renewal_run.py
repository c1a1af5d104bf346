"""The run-wide state behind one reload per `certbot renew` run."""
import json
import os

import pytest

from certbot_nginx_webroot import renewal_run


@pytest.fixture(autouse=True)
def fresh_run():
    renewal_run.reset()
    yield
    renewal_run.reset()


def test_lineages_of_one_nginx_are_flushed_together_once():
    calls = []
    flush = lambda lineages, expected: calls.append((list(lineages), dict(expected)))  # noqa: E731
    assert renewal_run.defer(("nginx", "/etc/nginx/nginx.conf"), "a", {"a.example": "/a"}, flush)
    assert not renewal_run.defer(("nginx", "/etc/nginx/nginx.conf"), "b",
                                 {"b.example": "/b", "www.b.example": "/b"}, flush)
    assert renewal_run.waiting() == ["a", "b"]
    renewal_run.flush_all()
    assert calls == [(["a", "b"], {"a.example": "/a", "b.example": "/b",
                                   "www.b.example": "/b"})]
    assert renewal_run.waiting() == []
    renewal_run.flush_all()  # nothing left: no second reload
    assert len(calls) == 1


def test_each_nginx_is_flushed_and_a_failure_is_raised_after_the_others():
    calls = []

    def failing(lineages, expected):
        calls.append("one")
        raise RuntimeError("nginx -t failed")

    renewal_run.defer(("nginx", "/one/nginx.conf"), "a", {"a.example": "/a"}, failing)
    renewal_run.defer(("nginx", "/two/nginx.conf"), "b", {"b.example": "/b"},
                      lambda lineages, expected: calls.append("two"))
    with pytest.raises(RuntimeError, match="nginx -t failed"):
        renewal_run.flush_all()
    assert calls == ["one", "two"]
    assert renewal_run.waiting() == []  # reported once, not retried at exit


def test_the_last_lineage_is_the_named_one_or_the_last_conf_by_name(tmp_path):
    for name in ("b.example", "a.example", "c.example"):
        (tmp_path / f"{name}.conf").write_text("")
    (tmp_path / "z.example.conf.bak").write_text("")  # certbot reads *.conf only
    assert renewal_run.last_lineage(str(tmp_path), None) == "c.example"
    assert renewal_run.last_lineage(str(tmp_path), "a.example") == "a.example"
    assert renewal_run.last_lineage(str(tmp_path / "missing"), None) is None


KEY = ("nginx", "/etc/nginx/nginx.conf")


def test_an_owed_reload_is_kept_on_disk_atomically_for_root_only(tmp_path):
    path = str(tmp_path / renewal_run.STATE_NAME)
    renewal_run.remember(path, KEY, ["www.a.example", "a.example"])  # before the save
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    renewal_run.remember(path, KEY, ["a.example", "www.a.example"], "/le/live/a/fullchain.pem")
    data = json.loads(open(path).read())
    # The saved certificate takes the place of the entry that had only names.
    assert data["reloads"] == [{"ctl": "nginx", "conf": "/etc/nginx/nginx.conf", "lineages": [
        {"names": ["a.example", "www.a.example"], "fullchain": "/le/live/a/fullchain.pem"}]}]
    assert [p.name for p in tmp_path.iterdir()] == [renewal_run.STATE_NAME]  # no temp file left
    # This process wrote it: nothing was left by an earlier run.
    assert not renewal_run.left_by_earlier_run(path, KEY, "/le/live/a/fullchain.pem",
                                               ["a.example"])
    renewal_run.forget(path, KEY, {"/le/live/a/fullchain.pem": ["a.example", "www.a.example"]})
    assert not os.path.exists(path)  # nothing owed, no file


def test_the_next_process_sees_what_an_earlier_run_left(tmp_path):
    path = str(tmp_path / renewal_run.STATE_NAME)
    renewal_run.remember(path, KEY, ["a.example"], "/le/live/a/fullchain.pem")
    renewal_run.remember(path, KEY, ["b.example"])  # killed before b was saved
    renewal_run.reset()  # a new certbot process
    assert renewal_run.left_by_earlier_run(path, KEY, "/le/live/a/fullchain.pem", ["a.example"])
    assert renewal_run.left_by_earlier_run(path, KEY, "/le/live/b/fullchain.pem", ["b.example"])
    assert not renewal_run.left_by_earlier_run(path, KEY, "/le/live/c/fullchain.pem",
                                               ["c.example"])
    assert not renewal_run.left_by_earlier_run(path, ("nginx", "/other/nginx.conf"),
                                               "/le/live/a/fullchain.pem", ["a.example"])
    renewal_run.forget(path, KEY, {"/le/live/a/fullchain.pem": ["a.example"]})
    assert not renewal_run.left_by_earlier_run(path, KEY, "/le/live/a/fullchain.pem",
                                               ["a.example"])
    renewal_run.reset()
    assert renewal_run.left_by_earlier_run(path, KEY, "/le/live/b/fullchain.pem", ["b.example"])


def test_an_unreadable_state_file_is_ignored_and_replaced(tmp_path, caplog):
    path = tmp_path / renewal_run.STATE_NAME
    path.write_text("{not json")
    assert not renewal_run.left_by_earlier_run(str(path), KEY, "/f", ["a.example"])
    assert "cannot be read" in caplog.text
    renewal_run.remember(str(path), KEY, ["a.example"])
    assert json.loads(path.read_text())["format"] == renewal_run.STATE_FORMAT
