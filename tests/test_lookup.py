"""nginx's server selection as pure functions."""
import pytest

from certbot_nginx_webroot.lookup import (DEFAULT, EXACT, REGEX, WILDCARD_HEAD, WILDCARD_TAIL,
                                          AmbiguousName, Listen, Server, answering,
                                          ip_address, name_rank, parse_listen, request_host,
                                          wants_proxy_protocol)


@pytest.mark.parametrize("args,expected", [
    (["80"], Listen("*", 80)),
    (["127.0.0.1:8080"], Listen("127.0.0.1", 8080)),
    (["127.0.0.1"], Listen("127.0.0.1", 80)),
    (["[::]:443", "ssl", "http2"], Listen("[::]", 443, True, False, True)),
    (["[::1]"], Listen("[::1]", 80)),
    (["*:80", "default_server"], Listen("*", 80, False, True)),
    (["0.0.0.0:80", "default"], Listen("*", 80, False, True)),
    (["443", "ssl", "default_server", "reuseport"], Listen("*", 443, True, True)),
    (["localhost:81"], Listen("localhost", 81)),
    (["127.0.0.1:80", "proxy_protocol"], Listen("127.0.0.1", 80, proxy_protocol=True)),
    (["[::]:443", "ssl", "proxy_protocol"], Listen("[::]", 443, True, proxy_protocol=True)),
    (["unix:/run/nginx.sock"], None),
    (["443", "quic", "reuseport"], None),
])
def test_parse_listen(args, expected):
    assert parse_listen(args) == expected


def test_ipv6_flag():
    assert parse_listen(["[::]:80"]).ipv6 and not parse_listen(["80"]).ipv6


@pytest.mark.parametrize("name,pattern,kind", [
    ("www.example.org", "www.example.org", EXACT),
    ("WWW.example.org", "www.EXAMPLE.org", None),  # host is lower-cased by answering()
    ("www.example.org", "*.example.org", WILDCARD_HEAD),
    ("a.b.example.org", "*.example.org", WILDCARD_HEAD),
    ("example.org", "*.example.org", None),
    ("example.org", ".example.org", WILDCARD_HEAD),
    ("www.example.org", ".example.org", WILDCARD_HEAD),
    ("www.example.com", "www.*", WILDCARD_TAIL),
    ("www.example.org", "~^www\\.(?<domain>.+)$", REGEX),
    ("mail.example.org", "~^www\\.", None),
    ("example.org", "_", None),
    ("example.org", "~[invalid", None),
])
def test_name_rank(name, pattern, kind):
    rank = name_rank(name, pattern)
    assert (rank[0] if rank else None) == kind


def _server(names, *listens):
    return Server(tuple(names), tuple(parse_listen(spec.split()) for spec in listens) or
                  (Listen("*", 80),))


def _pick(servers, host, port=80, **kw):
    return [(servers.index(m.server), m.kind) for m in answering(servers, host, port, **kw)]


def test_precedence_exact_then_head_then_tail_then_regex():
    servers = [_server(["~^www\\."], "80"), _server(["www.*"], "80"),
               _server(["*.example.org"], "80"), _server(["www.example.org"], "80")]
    assert _pick(servers, "www.example.org") == [(3, EXACT)]
    assert _pick(servers[:3], "www.example.org") == [(2, WILDCARD_HEAD)]
    assert _pick(servers[:2], "www.example.org") == [(1, WILDCARD_TAIL)]
    assert _pick(servers[:1], "www.example.org") == [(0, REGEX)]


def test_longest_wildcard_wins():
    servers = [_server(["*.org"], "80"), _server(["*.example.org"], "80")]
    assert _pick(servers, "a.example.org") == [(1, WILDCARD_HEAD)]


def test_first_regex_wins():
    servers = [_server(["~example"], "80"), _server(["~^a\\."], "80")]
    assert _pick(servers, "a.example.org") == [(0, REGEX)]


def test_default_server_then_first_listed():
    servers = [_server(["a.example"], "80"), _server(["_"], "80 default_server")]
    assert _pick(servers, "z.example") == [(1, DEFAULT)]
    servers = [_server(["a.example"], "80"), _server(["b.example"], "80")]
    assert _pick(servers, "z.example") == [(0, DEFAULT)]
    assert _pick(servers, "z.example", use_default=False) == []


def test_port_is_a_parameter_and_no_listen_means_80():
    servers = [_server(["a.example"]), _server(["a.example"], "5002"),
               _server(["a.example"], "443 ssl")]
    assert _pick(servers, "a.example", 80) == [(0, EXACT)]
    assert _pick(servers, "a.example", 5002) == [(1, EXACT)]
    assert _pick(servers, "a.example", 443) == [(2, EXACT)]
    assert _pick(servers, "a.example", 8443) == []


def test_one_answer_per_address():
    servers = [_server(["a.example"], "127.0.0.1:80"), _server(["a.example"], "[::]:80"),
               _server(["b.example"], "80")]
    assert _pick(servers, "a.example") == [(0, EXACT), (1, EXACT), (2, DEFAULT)]
    assert _pick(servers, "a.example", use_default=False) == [(0, EXACT), (1, EXACT)]


def test_same_block_on_two_addresses_counts_once():
    servers = [_server(["a.example"], "80", "[::]:80")]
    assert _pick(servers, "a.example") == [(0, EXACT)]


def test_conflicting_names_are_refused():
    servers = [_server(["a.example"], "80"), _server(["a.example", "b"], "80")]
    with pytest.raises(AmbiguousName) as err:
        answering(servers, "a.example", 80)
    assert len(err.value.servers) == 2


def test_host_is_case_and_trailing_dot_insensitive():
    servers = [_server(["a.example"], "80"), _server(["b.example"], "80")]
    assert _pick(servers, "B.Example.") == [(1, EXACT)]


def test_an_ip_address_lands_on_its_own_listen_before_the_wildcard():
    servers = [_server(["_"], "80 default_server"), _server(["a.example"], "192.0.2.10:80"),
               _server(["b.example"], "[::]:80"), _server(["c.example"], "[::]:80 default_server")]
    # listen 192.0.2.10:80 takes every connection to that address, default_server elsewhere or not.
    assert _pick(servers, "192.0.2.10") == [(1, DEFAULT)]
    # Another IPv4 address: the wildcard's default_server; IPv6: [::]'s, not the first.
    assert _pick(servers, "198.51.100.7") == [(0, DEFAULT)]
    assert _pick(servers, "2001:db8::1") == [(3, DEFAULT)]
    assert _pick(servers, "[2001:db8::1]") == [(3, DEFAULT)]


def test_an_ip_address_matches_a_server_name_spelled_as_the_host_header():
    servers = [_server(["_"], "[::]:80"), _server(["[::1]"], "[::]:80"),
               _server(["127.0.0.1"], "80"), _server(["x"], "80 default_server")]
    assert _pick(servers, "::1") == [(1, EXACT)]
    assert _pick(servers, "127.0.0.1") == [(2, EXACT)]


def test_an_ip_address_nginx_does_not_listen_for():
    assert _pick([_server(["a.example"], "80")], "::1") == []
    assert _pick([_server(["a.example"], "10.0.0.1:80")], "10.0.0.2") == []


@pytest.mark.parametrize("identifier,host", [
    ("192.0.2.10", "192.0.2.10"), ("2001:DB8::1", "[2001:db8::1]"),
    ("::1", "[::1]"), ("Example.COM", "example.com")])
def test_request_host(identifier, host):
    assert request_host(identifier) == host


@pytest.mark.parametrize("use_default", [True, False])
def test_a_block_on_two_addresses_is_reported_with_the_first_address_of_the_config(use_default):
    # *:8443 appears first (in another block), so nginx's list for it is
    # looked at first, whichever order the matching block lists its listens.
    servers = [_server(["other"], "8443"), _server(["a"], "1.2.3.4:8443", "8443 ssl")]
    found = answering(servers, "a", 8443, use_default=use_default)
    assert [(servers.index(m.server), m.listen) for m in found] == [
        (1, Listen("*", 8443, ssl=True))]


@pytest.mark.parametrize("listens,ip,port,expected", [
    # the address's own listen decides
    ([["127.0.0.1:80 proxy_protocol"]], "127.0.0.1", 80, True),
    ([["127.0.0.1:80 proxy_protocol"]], "127.0.0.1", 443, False),
    # any listen of that address:port, in any block, turns it on (nginx ORs)
    ([["127.0.0.1:80"], ["127.0.0.1:80 proxy_protocol"]], "127.0.0.1", 80, True),
    ([["127.0.0.1:80 proxy_protocol"], ["127.0.0.1:80 default_server"]], "127.0.0.1", 80, True),
    # an address of its own takes the connection from the wildcard
    ([["80 proxy_protocol"], ["127.0.0.1:80"]], "127.0.0.1", 80, False),
    ([["80"], ["127.0.0.1:80 proxy_protocol"]], "127.0.0.1", 80, True),
    ([["80"], ["127.0.0.1:80 proxy_protocol"]], "127.0.0.2", 80, False),
    ([["80 proxy_protocol"], ["127.0.0.1:80"]], "127.0.0.2", 80, True),
    # the wildcard of the connection's family only
    ([["80 proxy_protocol"], ["[::]:80"]], "::1", 80, False),
    ([["80"], ["[::]:80 proxy_protocol"]], "::1", 80, True),
    ([["[::1]:443 ssl proxy_protocol"]], "::1", 443, True),
    # nothing listens there
    ([["127.0.0.2:80 proxy_protocol"]], "127.0.0.1", 80, False),
])
def test_wants_proxy_protocol(listens, ip, port, expected):
    servers = [_server(["a"], *specs) for specs in listens]
    assert wants_proxy_protocol(servers, ip_address(ip), port) is expected


def test_a_listen_takes_tls_by_its_flag_or_the_blocks_ssl_on():
    from certbot_nginx_webroot.lookup import is_ssl_on, takes_tls
    plain, flagged = Listen("*", 443), Listen("*", 443, ssl=True)
    assert takes_tls(flagged, Server(("a",), (flagged,)))
    assert not takes_tls(plain, Server(("a",), (plain,)))
    assert takes_tls(plain, Server(("a",), (plain,), ssl_on=True))
    assert is_ssl_on(["on"]) and not is_ssl_on(["off"]) and not is_ssl_on([])
