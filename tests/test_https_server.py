"""The block that serves a name over HTTPS when none does: in place or a copy
(no certbot, no nginx)."""
import pytest

from certbot_nginx_webroot import (
    build_info, challenge_location, https_server, lookup, parser, sites)
from site_configs import M, load, text


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
                                           "a.example", 80, 443, build_info.HTTP2_LISTEN,
                                           ["a.example"])
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
    source = sites.answering(config, "www.main.example", 80)[0]
    copy = https_server.make_https_server(config, source, "www.main.example", 80, 443, None,
                                          ["www.main.example"])
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
