"""The run-wide state behind one reload per `certbot renew` run."""
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
