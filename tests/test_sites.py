"""Server-block operations on the config model (no certbot, no nginx)."""
import pytest

from certbot_nginx_webroot import (
    build_info, certificate_lines, challenge_location, edit, effective, https_server, lookup,
    parser, placement, redirects, rewrites, sites)
from certbot_nginx_webroot.config import Config

M = edit.MARK


def load(tmp_path, sites_text):
    (tmp_path / "nginx.conf").write_text("http {\n    include sites.conf;\n}\n")
    (tmp_path / "sites.conf").write_text(sites_text)
    return Config.load(str(tmp_path / "nginx.conf"))


def text(config):
    return parser.dump(config.files[next(p for p in config.files if p.endswith("sites.conf"))])


@pytest.mark.parametrize("directive,expected", [
    ("return 301 https://$host$request_uri;", True),
    ("return 404;", True),
    ("rewrite ^ https://$host$request_uri? permanent;", True),
    ("rewrite ^/(.*)$ /index.php?q=$1 last;", True),  # rewrites the challenge away
    ("rewrite ^/old$ /new last;", False),
    ("if ($host = a.example) { return 301 https://$host$request_uri; }", False),  # conditional
    ("if ($bad_bot) { return 403; }", False),
    ("set $x 1;", False),
])
def test_answers_every_request(directive, expected):
    assert rewrites.answers_every_request(parser.parse(directive).children[0]) is expected


def test_certbot_style_redirect_block_gets_the_guard_first(tmp_path):
    source = ("server {\n    if ($host = a.example) {\n"
              "        return 301 https://$host$request_uri;\n    } # managed by Certbot\n"
              "    listen 80;\n    server_name a.example;\n"
              "    return 404; # managed by Certbot\n}\n")
    config = load(tmp_path, source)
    challenge_location.ensure_challenge_location(config, config.server_blocks()[0], "/w", "a.example")
    # Every user line stays as it was; the guard goes before the first
    # server-level directive that may answer (the conditional if).
    assert text(config).startswith(
        f'server {{\n    if ($uri ~ "^/\\.well-known/acme-challenge/[-_A-Za-z0-9]+$") {{  {M}\n'
        f"        break;  {M}\n    }}  {M}\n    if ($host = a.example) {{\n")
    assert "".join(line for line in text(config).splitlines(True) if M not in line) == source
    server = config.server_blocks()[0]
    assert effective.select_location(config, server, challenge_location.challenge_uri()) == [
        n for n in server.children if n.name == "location"]


def test_guard_leaves_included_locations_behind_the_return(tmp_path):
    (tmp_path / "locs.inc").write_text("location /api { proxy_pass http://b; }\n")
    config = load(tmp_path, "server {\n    listen 80;\n    include locs.inc;\n"
                  "    return 301 https://$host$request_uri;\n}\n")
    server = config.server_blocks()[0]
    challenge_location.ensure_challenge_location(config, server, "/w", "a.example")
    body = text(config)
    assert "    return 301 https://$host$request_uri;\n" in body  # still at server level
    assert body.index("break;") < body.index("return 301")
    assert "location / " not in body


def test_conditional_if_alone_gets_no_guard(tmp_path):
    config = load(tmp_path, "server {\n    listen 80;\n    if ($bad_bot) { return 403; }\n"
                  "    location / { proxy_pass http://b; }\n}\n")
    server = config.server_blocks()[0]
    challenge_location.ensure_challenge_location(config, server, "/w", "a.example")
    assert "break;" not in text(config)
    assert [n.line for n in challenge_location.server_level_ifs(config, server)] == [3]


def test_https_copy_of_a_catch_all_is_for_the_name_only(tmp_path):
    config = load(tmp_path, "server {\n    listen 80 default_server reuseport;\n"
                  "    server_name _;\n    root /var/www/html;\n}\n")
    match = sites.answering(config, "new.example", 80)[0]
    assert match.kind == lookup.DEFAULT
    copy = https_server.make_https_server(config, match, "new.example", 80, 443)
    assert parser.dump_node(copy) == (f"server {{  {M}\n    listen 443 ssl;  {M}\n"
                                      f"    server_name new.example;  {M}\n"
                                      f"    root /var/www/html;  {M}\n}}")
    assert text(config).endswith(f"}}  {M}\n")  # the closing line too
    assert [m.server.ref for m in sites.answering(config, "new.example", 443, False)] == [copy]


OTHER_HTTPS = "server {\n    listen %s;\n    server_name other.example;\n}\n"


@pytest.mark.parametrize("other_https, flags", [
    ("", "ssl http2"),                           # nobody else on *:443
    (OTHER_HTTPS % "443 ssl", "ssl"),             # http2 would switch it on for other.example
    (OTHER_HTTPS % "443 ssl http2", "ssl http2"),  # already on for the address
    (OTHER_HTTPS % "127.0.0.1:443 ssl", "ssl http2"),  # another address:port
    (OTHER_HTTPS % "8443 ssl", "ssl http2"),
])
def test_listen_http2_only_where_it_changes_no_other_block(tmp_path, other_https, flags):
    config = load(tmp_path, other_https + "server {\n    listen 80;\n"
                  "    server_name a.example;\n}\n")
    block = https_server.make_https_server(config, sites.answering(config, "a.example", 80)[0],
                                    "a.example", 80, 443, build_info.HTTP2_LISTEN, ["a.example"])
    assert block is config.server_blocks()[-1]  # the block itself serves HTTPS
    assert parser.dump_node(block).splitlines()[1:3] == ["    listen 80;",
                                                         f"    listen 443 {flags};  {M}"]


def test_http2_directive_is_per_block_and_not_doubled(tmp_path):
    config = load(tmp_path, OTHER_HTTPS % "443 ssl" + "server {\n    listen 80;\n"
                  "    server_name a.example;\n}\nserver {\n    listen 80;\n"
                  "    server_name b.example;\n    http2 off;\n}\n")
    a = https_server.make_https_server(config, sites.answering(config, "a.example", 80)[0],
                                "a.example", 80, 443, build_info.HTTP2_DIRECTIVE)
    assert parser.dump_node(a).splitlines()[2:4] == [f"    listen 443 ssl;  {M}",
                                                     f"    http2 on;  {M}"]
    b = https_server.make_https_server(config, sites.answering(config, "b.example", 80)[0],
                                "b.example", 80, 443, build_info.HTTP2_DIRECTIVE)
    assert "http2 on" not in parser.dump_node(b)  # the block's own choice is kept
    assert "    http2 off;\n" in parser.dump_node(b)


def test_set_certificate_leaves_a_listen_that_ssl_on_makes_tls(tmp_path):
    config = load(tmp_path, "server {\n    listen 443;\n    ssl on;\n"
                  "    server_name a.example;\n}\n")
    certificate_lines.set_certificate(config, config.server_blocks()[0], "/f.pem", "/k.pem", 443)
    assert "    listen 443;\n" in text(config)


def test_https_copy_lists_only_the_names_the_certificate_covers(tmp_path):
    config = load(tmp_path, "server {\n    listen 80;\n"
                  "    server_name a.example legacy.example www.a.example;\n}\n")
    copy = https_server.make_https_server(config, sites.answering(config, "a.example", 80)[0],
                                   "a.example", 80, 443, None, ["a.example", "*.a.example"])
    assert f"    server_name a.example www.a.example;  {M}" in parser.dump_node(copy)


def test_https_copy_of_a_redirect_to_another_name_keeps_the_redirect(tmp_path):
    config = load(tmp_path, "server {\n    listen 80;\n    server_name old.example;\n"
                  "    return 301 https://new.example$request_uri;\n}\n")
    copy = https_server.make_https_server(config, sites.answering(config, "old.example", 80)[0],
                                   "old.example", 80, 443)
    assert f"    return 301 https://new.example$request_uri;  {M}" in parser.dump_node(copy)


def test_tls_blocks_on_every_port_get_the_certificate(tmp_path):
    config = load(tmp_path, "server { listen 80; server_name a.example;"
                  " return 301 https://$host:8443$request_uri; }\n"
                  "server { listen 8443; ssl on; server_name a.example; }\n"
                  "server { listen 8444 ssl; server_name a.example; }\n"
                  "server { listen 9000; server_name a.example; }\n"  # plain HTTP
                  "server { listen 8445 ssl default_server; server_name _; }\n")
    found = placement.tls_blocks(config, "a.example", 443)
    assert [(block.line, port) for block, port in found] == [(2, 8443), (3, 8444)]


def test_covers():
    assert certificate_lines.covers(["a.example", "*.b.example"], "x.b.example")
    assert not certificate_lines.covers(["*.b.example"], "b.example")
    assert not certificate_lines.covers(["*.b.example"], "y.x.b.example")


def test_set_certificate_adds_ssl_to_a_plain_listen(tmp_path):
    config = load(tmp_path, "server {\n    listen 443;\n    server_name a.example;\n}\n")
    certificate_lines.set_certificate(config, config.server_blocks()[0], "/f.pem", "/k.pem", 443)
    assert text(config) == (f"server {{\n    listen 443 ssl;  {M}\n    server_name a.example;\n"
                            f"    ssl_certificate /f.pem;  {M}\n"
                            f"    ssl_certificate_key /k.pem;  {M}\n}}\n")


def test_a_block_on_both_ports_redirects_plain_http_only(tmp_path):
    config = load(tmp_path, "server {\n    listen 80;\n    listen 443 ssl;\n"
                  "    server_name a.example b.example c.example;\n}\n")
    for name in ("a.example", "b.example"):
        assert redirects.add_redirect(config, sites.answering(config, name, 80)[0], 443, name)
    body = text(config).replace(f"  {M}", "")
    assert body == (
        "server {\n    listen 80;\n    listen 443 ssl;\n"
        "    server_name a.example b.example c.example;\n"
        "    set $nginx_webroot_redirect 0;\n"
        "    if ($host = b.example) {\n        set $nginx_webroot_redirect 1;\n    }\n"
        "    if ($host = a.example) {\n        set $nginx_webroot_redirect 1;\n    }\n"
        "    if ($https) {\n        set $nginx_webroot_redirect 0;\n    }\n"
        "    if ($nginx_webroot_redirect) {\n"
        "        return 301 https://$host$request_uri;\n    }\n}\n")
    server = config.server_blocks()[0]
    assert redirects.redirects_to_https(config, server, "a.example")
    assert redirects.redirects_to_https(config, server, "b.example")
    assert not redirects.redirects_to_https(config, server, "c.example")


def test_redirect_on_another_https_port_names_it(tmp_path):
    config = load(tmp_path, "server {\n    listen 80;\n    server_name a.example;\n}\n")
    match = sites.answering(config, "a.example", 80)[0]
    assert redirects.add_redirect(config, match, 8443, "a.example")
    assert "return 301 https://$host:8443$request_uri;" in text(config)
    assert not redirects.add_redirect(config, sites.answering(config, "a.example", 80)[0], 8443,
                                  "a.example")


def test_ambiguity_names_both_places(tmp_path):
    config = load(tmp_path, "server { server_name a.example; }\n"
                  "server { server_name a.example; }\n")
    with pytest.raises(sites.SiteError) as err:
        sites.answering(config, "a.example", 80)
    assert "sites.conf:1" in str(err.value) and "sites.conf:2" in str(err.value)


def test_plain_names(tmp_path):
    config = load(tmp_path, "server { server_name A.example *.b.example ~^c _ localhost "
                  "www.* $host d.example; }\n")
    assert sites.plain_names(config) == {"a.example", "d.example"}


def test_certificate_listens_finds_the_https_port_from_the_config(tmp_path):
    config = load(tmp_path, "server { listen 80; server_name a.example; }\n"
                  "server { listen 127.0.0.1:8443 ssl; listen [::1]:8443 ssl; listen 8080;\n"
                  "    server_name a.example b.example;\n"
                  "    ssl_certificate /le/a/fullchain.pem; }\n"
                  "server { listen 9443; ssl on; server_name *.example;\n"
                  "    ssl_certificate /le/a/fullchain.pem; }\n"
                  "server { listen 443 ssl; server_name a.example;\n"
                  "    ssl_certificate /le/other/fullchain.pem; }\n"
                  "server { listen 7443; ssl off; server_name a.example;\n"
                  "    ssl_certificate /le/a/fullchain.pem; }\n")
    assert certificate_lines.certificate_listens(config, "a.example", "/le/a/fullchain.pem") == [
        ("127.0.0.1", 8443), ("[::1]", 8443), ("*", 9443)]
    assert certificate_lines.certificate_listens(config, "c.example", "/le/a/fullchain.pem") == [("*", 9443)]
    assert certificate_lines.certificate_listens(config, "a.example", "/le/b/fullchain.pem") == []


OLD_LOCATION = (  # as 0.1.0 added it
    "    location ^~ /.well-known/acme-challenge/ {  %s\n        root /w;  %s\n"
    "        default_type text/plain;  %s\n        try_files $uri =404;  %s\n"
    "    }  %s\n" % ((M,) * 5))


def test_an_older_challenge_location_gets_get_only_once(tmp_path):
    config = load(tmp_path, "server {\n    listen 80;\n" + OLD_LOCATION + "}\n")
    server = config.server_blocks()[0]
    assert challenge_location.limit_challenge_methods(config, server)
    assert text(config) == ("server {\n    listen 80;\n" + OLD_LOCATION.replace(
        "=404;  %s\n" % M, "=404;  %s\n        limit_except GET {  %s\n"
        "            deny all;  %s\n        }  %s\n" % ((M,) * 4)) + "}\n")
    assert not challenge_location.limit_challenge_methods(config, server)  # once


@pytest.mark.parametrize("location", [
    OLD_LOCATION.replace("        root /w;  %s\n" % M, "        root /w;\n"),  # edited by hand
    "    location ^~ /.well-known/acme-challenge/ { root /w; }\n",  # the user's own
])
def test_a_users_challenge_location_is_not_edited(tmp_path, location):
    config = load(tmp_path, "server {\n    listen 80;\n" + location + "}\n")
    assert not challenge_location.limit_challenge_methods(config, config.server_blocks()[0])
    assert not config.changed


def test_the_new_challenge_location_limits_methods(tmp_path):
    config = load(tmp_path, "server {\n    listen 80;\n}\n")
    server = config.server_blocks()[0]
    challenge_location.ensure_challenge_location(config, server, "/w", "a.example")
    assert "        limit_except GET {  %s\n            deny all;  %s\n" % (M, M) in text(config)
    assert not challenge_location.limit_challenge_methods(config, server)


@pytest.mark.parametrize("condition, values, expected", [
    ("($host = a.example)", {}, True),
    ("($host = b.example)", {}, False),
    ("($host = A.example)", {}, False),  # $host is lower case; = compares bytes
    ('($host = "a.example")', {}, True),
    ("($host != b.example)", {}, True),
    ("($host != a.example)", {}, False),
    ("($host ~* ^(www\\.)?A\\.example$)", {}, True),
    ("($host ~ ^www\\.)", {}, False),
    ("($host !~ ^www\\.)", {}, True),
    ("($host !~* a)", {}, False),
    ("($scheme = http)", {}, True),
    ("($scheme != https)", {}, True),
    ("($https)", {}, False),
    ("($https != on)", {}, True),
    ("($host)", {}, True),
    ("($server_port = 80)", {"port": 80}, True),
    ("($server_port = 80)", {"port": 8080}, False),
    ("($server_port = 80)", {}, False),  # port unknown
    ("($request_uri ~ ^/admin)", {}, False),
    ("($uri ~ ^/)", {}, False),
    ("($args)", {}, False),
    ("($bad_bot)", {}, False),
    ("($host = $server_name)", {}, False),
    ("(-f $request_filename)", {}, False),
    ("(!-e $request_filename)", {}, False),
])
def test_condition_holds_for_every_request_of_the_name(condition, values, expected):
    node = parser.parse("if %s { return 301 https://x; }" % condition).children[0]
    parsed = rewrites.if_condition(node)
    holds = parsed is not None and rewrites.condition_holds(
        parsed, rewrites.plain_request("a.example", values.get("port")))
    assert holds is expected


@pytest.mark.parametrize("regex, expected", [
    ("^", True), ("^/", True), ("/", True), ("^(.*)$", True), ("^/(.*)$", True),
    ("^/(.*)", True), (".*", True), ("^.*$", True), ("(.*)", True), ("^(.+)$", True),
    ("^/(.+)$", False), ("^/$", False), ("^/admin", False), ("^/(.*)\\.php$", False),
    ("^$", False), ("^/.*\\$", False),
])
def test_matches_every_uri(regex, expected):
    assert rewrites.matches_every_uri(regex) is expected


@pytest.mark.parametrize("body, expected", [
    ("return 301 https://$host$request_uri;", True),
    ("return https://$host$request_uri;", True),
    ("rewrite ^ https://$host$request_uri? permanent;", True),
    ("rewrite ^(.*)$ https://$host$1 redirect;", True),
    ("rewrite ^/admin https://$host$request_uri? permanent;", False),
    ("if ($request_uri ~ ^/admin) { return 301 https://$host$request_uri; }", False),
    ("if ($host != a.example) { return 301 https://a.example$request_uri; }", False),
    ("if ($host != www.a.example) { return 301 https://a.example$request_uri; }", True),
    ("if ($scheme = http) { return 301 https://$host$request_uri; }", True),
    ("if ($args) { return 301 https://$host$request_uri; }", False),
    ("return 444;\n    return 301 https://$host$request_uri;", False),  # never reached
    ("location / { return 301 https://$host$request_uri; }", True),
    ("location / { return 301 https://$host$request_uri; }\n"
     "    location /api { proxy_pass http://b; }", False),  # /api stays on HTTP
    ("location /.well-known/acme-challenge/ { root /w; }\n"
     "    location / { return 301 https://$host$request_uri; }", True),
])
def test_only_a_redirect_of_every_request_counts(tmp_path, body, expected):
    config = load(tmp_path, "server {\n    listen 80;\n    server_name a.example www.a.example;\n"
                  "    %s\n}\n" % body)
    assert redirects.redirects_to_https(config, config.server_blocks()[0], "a.example",
                                    port=80) is expected


@pytest.mark.parametrize("locations, expected", [
    ("", False),  # nothing serves challenges
    ("location / { root /srv; }", False),  # files, but the whole site too
    ("location ^~ /.well-known/acme-challenge/ { root /w; }", True),
    ("location /.well-known/acme-challenge/ { root /w; }\n"
     "location ~ \\.php$ { proxy_pass http://b; }", True),  # tokens have no dot
    ("location /.well-known/acme-challenge/ { root /w; }\n"
     "location ~ [a-z]$ { proxy_pass http://b; }", False),  # takes some tokens
    ("location ^~ /.well-known/acme-challenge/ { root /w; }\n"
     "location /.well-known/acme-challenge/A { proxy_pass http://b; }", False),
    ("location ^~ /.well-known/acme-challenge/ { root /w;\n"
     "    location ~ Z$ { proxy_pass http://b; } }", False),
    ("location ^~ /.well-known/acme-challenge/ { proxy_pass http://b; }", False),
    ("location /.well-known/ { alias /w/.well-known/; }", True),
    ("location /.well-known/ { proxy_pass http://b; }", False),
])
def test_serves_challenge_files(tmp_path, locations, expected):
    config = load(tmp_path, "server {\n    listen 80;\n    %s\n}\n" % locations)
    assert challenge_location.serves_challenge_files(config, config.server_blocks()[0]) is expected


def test_a_redirect_only_block_without_a_challenge_location_gets_no_guard(tmp_path):
    config = load(tmp_path, "server {\n    listen 80;\n    if ($office = 0) { return 403; }\n"
                  "    return 301 https://$host$request_uri;\n}\n")
    assert challenge_location.guard_challenges(config, config.server_blocks()[0]) is None
    assert not config.changed


@pytest.mark.parametrize("server_names, old, new, lost", [
    # issue 20 C1: a regex block with a wildcard certificate, a certificate for one name
    ([r"~^(?<sub>[a-z0-9-]+)\.example\.com$"], ["*.example.com"], ["foo.example.com"],
     ["*.example.com"]),
    ([r"~^(www|api)\.example\.com$"], ["*.example.com"], ["foo.example.com"], ["*.example.com"]),
    ([r"~^foo\.example\.com$"], ["*.example.com"], ["foo.example.com"], []),  # only foo
    (["*.example.com"], ["*.example.com"], ["foo.example.com"], ["*.example.com"]),
    (["*.example.com"], ["*.example.com"], ["*.example.com", "example.com"], []),
    ([r"~^(?<sub>.+)\.example\.com$"], ["example.com", "shop.example.com"],
     ["example.com"], ["shop.example.com"]),
    ([r"~^(?<sub>.+)\.example\.com$"], ["*.other.org"], ["a.example.com"], []),  # not served
    ([r"~."], ["snakeoil"], ["a.example.com"], []),  # a placeholder's CN is no name
    (["a.example", "b.example"], ["a.example", "b.example"], ["a.example"], ["b.example"]),
])
def test_answered_certificate_names(server_names, old, new, lost):
    assert certificate_lines.answered_certificate_names(server_names, old, new) == lost


@pytest.mark.parametrize("block, covered, in_place", [
    ("listen 80;\n    server_name a.example;\n    root /srv;", ["a.example"], True),
    ("listen 80;\n    server_name a.example b.example;\n    root /srv;", ["a.example"], False),
    ("listen 80;\n    server_name a.example b.example;\n    root /srv;",
     ["a.example", "b.example"], True),
    ("listen 80;\n    server_name a.example *.a.example;\n    root /srv;",
     ["a.example", "*.a.example"], True),
    ("listen 80;\n    server_name .a.example;\n    root /srv;", ["a.example"], False),
    ("listen 80;\n    server_name a.example ~^x\\.a\\.example$;\n    root /srv;",
     ["a.example", "x.a.example"], False),  # a regex: hosts no certificate lists
    ("listen 80;\n    server_name a.example;\n    return 301 https://b.example$request_uri;",
     ["a.example"], False),  # redirect-only: copied
    ("listen 80;\n    server_name a.example;\n    location / {\n"
     "        return 301 https://$host$request_uri;\n    }", ["a.example"], False),
    ("listen 80;\n    server_name a.example;\n    if ($scheme = http) {\n"
     "        return 301 https://$host$request_uri;\n    }\n    root /srv;", ["a.example"], False),
    ("server_name a.example;\n    root /srv;", ["a.example"], True),  # no listen: *:80
    ("listen 80;\n    server_name a.example;\n    rewrite ^/(.*)$ /index.php?q=$1 last;",
     ["a.example"], True),  # a front controller serves
    ("listen 80;\n    server_name a.example;\n    rewrite ^ https://b.example$request_uri? "
     "permanent;", ["a.example"], False),
    ("listen 80;\n    server_name a.example;\n    rewrite ^/(.*)$ /new/$1 permanent;",
     ["a.example"], False),
])
def test_serves_in_place(tmp_path, block, covered, in_place):
    config = load(tmp_path, "server {\n    %s\n}\n" % block)
    match = sites.answering(config, "a.example", 80)[0]
    assert https_server.serves_in_place(config, match, 443, covered) is in_place


def test_a_name_another_https_block_has_keeps_the_block_from_serving_in_place(tmp_path):
    config = load(tmp_path, "server {\n    listen 80;\n    server_name a.example b.example;\n"
                  "    root /srv;\n}\nserver {\n    listen 443 ssl;\n    server_name b.example;\n"
                  "}\n")
    match = sites.answering(config, "a.example", 80)[0]
    # nginx would warn "conflicting server name" for b.example on *:443
    assert not https_server.serves_in_place(config, match, 443, ["a.example", "b.example"])


def test_in_place_tls_mirrors_each_address_and_changes_no_user_line(tmp_path):
    source = ("server {\n    listen 192.0.2.1:80;\n    listen [::]:80 ipv6only=on;\n"
              "    server_name a.example;\n    root /srv;\n}\n")
    config = load(tmp_path, source)
    match = sites.answering(config, "a.example", 80)[0]
    block = https_server.make_https_server(config, match, "a.example", 80, 443, None, ["a.example"])
    assert block is match.server.ref
    assert text(config) == source.replace(
        "    server_name", f"    listen 192.0.2.1:443 ssl;  {M}\n    listen [::]:443 ssl;  {M}\n"
        "    server_name")


def test_https_copy_of_a_redirect_only_block_has_only_what_https_needs(tmp_path):
    config = load(tmp_path, "server {\n    listen 80;\n    server_name old.example;\n"
                  "    return 301 https://new.example$request_uri;\n}\n")
    server = config.server_blocks()[0]
    challenge_location.ensure_challenge_location(config, server, "/w", "old.example")
    copy = https_server.make_https_server(config, sites.answering(config, "old.example", 80)[0],
                                   "old.example", 80, 443, None, ["old.example"])
    assert parser.dump_node(copy) == (
        f"server {{  {M}\n    listen 443 ssl;  {M}\n    server_name old.example;  {M}\n"
        f"    return 301 https://new.example$request_uri;  {M}\n}}")
    assert text(config).endswith(f"\n}}  {M}\n")


def test_a_dual_stack_listen_gets_a_dual_stack_tls_listen(tmp_path):
    # `listen [::]:80 ipv6only=off;` alone takes IPv4 too; so must its TLS listen.
    config = load(tmp_path, "server {\n    listen [::]:80 ipv6only=off;\n"
                  "    server_name a.example;\n    root /srv;\n}\n")
    block = https_server.make_https_server(config, sites.answering(config, "a.example", 80)[0],
                                    "a.example", 80, 443, None, ["a.example"])
    assert f"    listen [::]:443 ssl ipv6only=off;  {M}\n" in parser.dump_node(block)


def test_a_block_without_listen_keeps_answering_on_80(tmp_path):
    # Without a listen directive nginx listens on *:80; a TLS listen alone
    # would end that, so the :80 one is written out first.
    config = load(tmp_path, "server {\n    server_name a.example;\n    root /srv;\n}\n")
    block = https_server.make_https_server(config, sites.answering(config, "a.example", 80)[0],
                                    "a.example", 80, 443, None, ["a.example"])
    assert parser.dump_node(block) == (f"server {{\n    server_name a.example;\n"
                                       f"    listen 80;  {M}\n    listen 443 ssl;  {M}\n"
                                       "    root /srv;\n}")
    assert [m.server.ref for m in sites.answering(config, "a.example", 80, False)] == [block]


def test_a_copy_keeps_locations_a_user_break_lets_requests_reach(tmp_path):
    config = load(tmp_path, "server {\n    listen 80;\n    server_name old.example;\n"
                  "    if ($uri ~ ^/status) { break; }\n"
                  "    return 301 https://new.example$request_uri;\n"
                  "    location /status { return 200; }\n}\n")
    copy = https_server.make_https_server(config, sites.answering(config, "old.example", 80)[0],
                                   "old.example", 80, 443, None, ["old.example"])
    assert "location /status" in parser.dump_node(copy)


def test_https_copy_for_fewer_names_writes_out_the_sources_server_name(tmp_path):
    # $server_name is the block's first name; the copy's first name differs.
    config = load(tmp_path, "server {\n    listen 80;\n"
                  "    server_name .Main.example www.main.example;\n"
                  "    root /srv/$server_name;\n"
                  "    location / { add_header X-Site \"${server_name}\" always;\n"
                  "        set $server_name_x 1; }\n}\n")
    copy = https_server.make_https_server(config, sites.answering(config, "www.main.example", 80)[0],
                                   "www.main.example", 80, 443, None, ["www.main.example"])
    dumped = parser.dump_node(copy)
    assert f"    server_name www.main.example;  {M}" in dumped
    assert "root /srv/main.example;" in dumped
    assert "add_header X-Site main.example always;" in dumped
    assert "set $server_name_x 1;" in dumped  # another variable
    assert "root /srv/$server_name;" in text(config)  # the :80 block as it was


def test_https_copy_with_the_same_first_name_keeps_server_name(tmp_path):
    config = load(tmp_path, "server {\n    listen 80;\n"
                  "    server_name a.example legacy.example;\n    root /srv/$server_name;\n}\n")
    copy = https_server.make_https_server(config, sites.answering(config, "a.example", 80)[0],
                                   "a.example", 80, 443, None, ["a.example"])
    assert "root /srv/$server_name;" in parser.dump_node(copy)


@pytest.mark.parametrize("redirect", [
    "    if ($request_uri ~ ^/admin) { return 301 https://$host$request_uri; }\n",
    "    location /admin { return 301 https://$host$request_uri; }\n",
    "    location /admin { if ($args) { rewrite ^ https://$server_name$uri permanent; } }\n",
])
def test_https_copy_of_a_block_with_a_partial_self_redirect_is_refused(tmp_path, redirect):
    # Over HTTPS the copy would send those requests to themselves (a loop).
    config = load(tmp_path, "server {\n    listen 80;\n    server_name a.example b.example;\n"
                  "    root /srv/a;\n" + redirect + "}\n")
    with pytest.raises(sites.SiteError, match="redirect them to themselves"):
        https_server.make_https_server(config, sites.answering(config, "a.example", 80)[0],
                                "a.example", 80, 443, None, ["a.example"])
    assert not config.changed


@pytest.mark.parametrize("redirect", [
    "    if ($scheme = http) { set $x 1; }\n"
    "    location /admin { if ($scheme = http) { return 301 https://$host$request_uri; } }\n",
    "    if ($host = b.example) { return 301 https://$host$request_uri; }\n",
])
def test_https_copy_keeps_a_self_redirect_that_never_applies_over_https(tmp_path, redirect):
    config = load(tmp_path, "server {\n    listen 80;\n    server_name a.example b.example;\n"
                  "    root /srv/a;\n" + redirect + "}\n")
    copy = https_server.make_https_server(config, sites.answering(config, "a.example", 80)[0],
                                   "a.example", 80, 443, None, ["a.example"])
    assert "return 301 https://$host$request_uri;" in parser.dump_node(copy)
