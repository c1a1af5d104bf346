"""The effective view of a server block: nginx's location choice and
inheritance, on the config model (nginx's own behaviour is checked end to
end in test_e2e)."""
import pytest

from certbot_nginx_webroot import challenge_location, edit, effective, redirects, sites
from certbot_nginx_webroot.config import Config

URI = challenge_location.challenge_uri()
CHALLENGE_DIR = ".well-known/acme-challenge"


def load(tmp_path, server_text, http_extra="", files=None):
    for name, content in (files or {}).items():
        (tmp_path / name).write_text(content)
    (tmp_path / "nginx.conf").write_text(
        "http {\n%s    include sites.conf;\n}\n" % http_extra)
    (tmp_path / "sites.conf").write_text(server_text)
    config = Config.load(str(tmp_path / "nginx.conf"))
    return config, config.server_blocks()[0]


def chosen(config, server, uri=URI):
    return [" ".join(n.args) for n in effective.select_location(config, server, uri)]


LOCATION_CASES = [
    # the longest prefix wins over a shorter one, whatever their order
    ("location /.well-known/acme-challenge/ {} location /.well-known/ {}",
     ["/.well-known/acme-challenge/"]),
    # a regex beats a plain prefix ...
    ("location /.well-known/acme-challenge/ {} location ~ /\\. { deny all; }", ["~ /\\."]),
    # ... but not one with ^~
    ("location ^~ /.well-known/acme-challenge/ {} location ~ /\\. { deny all; }",
     ["^~ /.well-known/acme-challenge/"]),
    # ^~ counts on the longest matching prefix only
    ("location ^~ /.well-known/ {} location ~ acme {} location /.well-known/acme-challenge {}",
     ["~ acme"]),
    ("location ^~ /.well-known/ {} location ~ acme {} location /.well-known {}",
     ["^~ /.well-known/"]),
    # regexes in config order: the first that matches
    ("location ~* \\.TXT$ {} location ~ challenge {} location ~ well {}", ["~ challenge"]),
    ("location ~ ^/\\.well-known/acme-challenge/(.*)$ {} location / {}",
     ["~ ^/\\.well-known/acme-challenge/(.*)$"]),
    # modifiers glued to the pattern, as nginx allows
    ("location =/x {} location ~/\\.well {}", ["~/\\.well"]),
    # exact matches only the exact URI
    ("location = /.well-known/acme-challenge/ {} location / {}", ["/"]),
    # Nextcloud: nested in ^~ /.well-known, beside exact ones
    ("location ^~ /.well-known { location = /.well-known/carddav { return 301 /x; }"
     " location /.well-known/acme-challenge { try_files $uri $uri/ =404; }"
     " return 301 /index.php$request_uri; }",
     ["^~ /.well-known", "/.well-known/acme-challenge"]),
    # a regex of the outer level beats a nested prefix of a plain prefix location
    ("location /.well-known/ { location /.well-known/acme-challenge/ {} } location ~ acme {}",
     ["~ acme"]),
    # a regex location's own nested locations are searched
    ("location ~ well-known { location ~ challenge {} }", ["~ well-known", "~ challenge"]),
    # named locations never match a URI
    ("location @fallback {}", []),
]


@pytest.mark.parametrize("locations, expected", LOCATION_CASES)
def test_select_location_follows_nginx(tmp_path, locations, expected):
    # test_e2e.py::test_location_choice_agrees_with_nginx asks nginx itself.
    config, server = load(tmp_path, "server { listen 80; %s }\n" % locations)
    assert chosen(config, server) == expected


def test_locations_from_an_include_count(tmp_path):
    config, server = load(tmp_path, "server {\n    include le.inc;\n    location / {}\n}\n",
                          files={"le.inc": "location ^~ /.well-known/ { root /srv; }\n"})
    assert chosen(config, server) == ["^~ /.well-known/"]


@pytest.mark.parametrize("server_text, http_extra, expected", [
    ("server { root /srv/site; location /.well-known/acme-challenge/ { allow all; } }", "",
     "/srv/site"),  # Mastodon: the server's root
    ("server { location ^~ /.well-known/acme-challenge/ { root /var/www/wk; } }",
     "    root /ignored;\n", "/var/www/wk"),
    ("server { location /.well-known/acme-challenge/ {} }", "    root /srv/http-level;\n",
     "/srv/http-level"),  # inherited from http
    ("server { root /srv/$host; location /.well-known/acme-challenge/ {} }", "",
     "/srv/a.example"),
    ("server { location /.well-known/acme-challenge/ {} }", "", "/prefix/html"),  # compiled in
    ("server { root www; location /.well-known/acme-challenge/ {} }", "", "/prefix/www"),
])
def test_document_root_is_inherited_as_nginx_does(tmp_path, server_text, http_extra, expected):
    config, server = load(tmp_path, server_text + "\n", http_extra)
    assert challenge_location.served_challenge_dir(config, server, "a.example", "/prefix") == \
        (expected, CHALLENGE_DIR)  # the root is the admin's; below it is checked


@pytest.mark.parametrize("server_text, expected", [
    # the alias's own directory is checked, as .well-known/acme-challenge
    # under a root is; the directory holding it is the admin's path
    ("location /.well-known/acme-challenge/ { alias /srv/acme/; }", ("/srv", "acme")),
    ("location ^~ /.well-known/ { alias /srv/wk/; }", ("/srv", "wk/acme-challenge")),
    # a nested location without root or alias inherits the outer alias
    ("location ^~ /.well-known/ { alias /srv/wk/; location /.well-known/acme-challenge/ {} }",
     ("/srv", "wk/acme-challenge")),
    ("location ^~ /.well-known/ { alias /srv/wk/;"
     " location /.well-known/acme-challenge/ { root /srv/own; } }", ("/srv/own", CHALLENGE_DIR)),
    # a root written as an alias: checked as under that root
    ("location /.well-known/ { alias /srv/site/.well-known/; }", ("/srv/site", CHALLENGE_DIR)),
    ("location /.well-known/acme-challenge { alias /srv/site/.well-known/acme-challenge; }",
     ("/srv/site", CHALLENGE_DIR)),
    ("location /.well-known/acme-challenge/ { alias /srv/x/acme-challenge/; }",
     ("/srv/x", "acme-challenge")),
    ("location /.well-known/acme-challenge/ { alias /acme/; }", ("/", "acme")),
    ("location /.well-known/acme-challenge/ { alias ../acme/; }", ("/etc", "acme")),  # prefix
])
def test_alias(tmp_path, server_text, expected):
    config, server = load(tmp_path, "server { root /srv/site; %s }\n" % server_text)
    assert challenge_location.served_challenge_dir(config, server, "a.example", "/etc/nginx") == expected


def test_an_alias_that_does_not_end_as_its_prefix_is_named(tmp_path):
    # nginx joins the strings: /srv/acme + the token, a file beside the directory
    config, server = load(tmp_path, "server {\n    listen 80;\n"
                          "    location /.well-known/acme-challenge/ { alias /srv/acme; }\n}\n")
    with pytest.raises(sites.SiteError) as err:
        challenge_location.served_challenge_dir(config, server, "a.example", "/")
    assert "sites.conf:3" in str(err.value) and "/srv/acmenginx-webroot_Probe" in str(err.value)


@pytest.mark.parametrize("location, message", [
    ("location /.well-known/acme-challenge/ { proxy_pass http://b; }", "proxy_pass"),
    ("location ^~ /.well-known/acme-challenge/ { return 404; }", "return"),
    ("location ~ acme-challenge { fastcgi_pass unix:/x; }", "fastcgi_pass"),
    ("location /.well-known/acme-challenge/ { try_files /index.html =404; }", "try_files"),
    ("location /.well-known/acme-challenge/ { deny all; }", "allow all;"),
    ("location /.well-known/acme-challenge/ { root /srv/$cookie_x; }", "$cookie_x"),
])
def test_a_challenge_location_that_does_not_serve_files_is_refused(tmp_path, location, message):
    config, server = load(tmp_path, "server {\n    listen 80;\n    %s\n}\n" % location)
    with pytest.raises(sites.SiteError) as err:
        challenge_location.served_challenge_dir(config, server, "a.example", "/")
    assert "sites.conf:3" in str(err.value) and message in str(err.value)


def test_a_well_known_proxy_is_not_adopted_and_ours_wins(tmp_path):
    # Matrix delegation and the like: the plugin's longer prefix takes the
    # challenge path alone.
    config, server = load(tmp_path, "server {\n    listen 80;\n"
                          "    location /.well-known/ { proxy_pass http://b; }\n}\n")
    assert challenge_location.ensure_challenge_location(config, server, "/w", "a.example") is None
    assert chosen(config, server) == ["^~ /.well-known/acme-challenge/"]


def test_a_challenge_location_a_regex_shadows_is_named(tmp_path):
    config, server = load(tmp_path, "server {\n    listen 80;\n"
                          "    location /.well-known/acme-challenge/ { root /srv; }\n"
                          "    location ~ /\\. { deny all; }\n}\n")
    with pytest.raises(sites.SiteError) as err:
        challenge_location.ensure_challenge_location(config, server, "/w", "a.example")
    assert "sites.conf:3" in str(err.value) and "sites.conf:4" in str(err.value)
    assert "location ^~ /.well-known/acme-challenge/" in str(err.value)
    assert not config.changed


@pytest.mark.parametrize("protection, http_extra, opening", [
    ('auth_basic "staging"; auth_basic_user_file /etc/htpasswd;', "", ["auth_basic off;"]),
    ("allow 10.0.0.0/8; deny all;", "", ["allow all;"]),
    ("include protect.inc;", "", ["auth_basic off;", "allow all;"]),
    ("auth_request /auth; satisfy any;", "", ["auth_request off;"]),
    ("", '    auth_basic "all sites";\n', ["auth_basic off;"]),  # from http level
    ('auth_basic off;', '    auth_basic "all sites";\n', []),
    ("deny 192.0.2.1;", "", []),  # everyone else may pass
])
def test_the_challenge_location_alone_is_opened(tmp_path, protection, http_extra, opening):
    config, server = load(
        tmp_path, "server {\n    listen 80;\n    %s\n    location / { root /srv; }\n}\n"
        % protection, http_extra,
        files={"protect.inc": 'auth_basic "x";\ndeny 192.0.2.0/24;\ndeny all;\n'})
    challenge_location.ensure_challenge_location(config, server, "/w", "a.example")
    location = effective.select_location(config, server, URI)[-1]
    lines = [n.raw for n in location.children][6:]  # after the plugin's own six
    assert lines == opening
    assert not effective.access(config, effective.scopes(config, server, [location]))
    # the rest of the site keeps its protection
    rest = effective.select_location(config, server, "/secret")
    assert bool(effective.access(config, effective.scopes(config, server, rest))) == \
        bool(opening)


def test_redirects_to_https_reads_includes_and_host_conditions(tmp_path):
    config, server = load(tmp_path, "server {\n    listen 80;\n    server_name _;\n"
                          "    if ($host = a.example) { return 301 https://$host$request_uri; }\n"
                          "    include r.inc;\n}\n",
                          files={"r.inc": "if ($host = b.example) { rewrite ^ https://b.example"
                                          "$request_uri permanent; }\n"})
    assert redirects.redirects_to_https(config, server, "a.example")
    assert redirects.redirects_to_https(config, server, "b.example")
    assert not redirects.redirects_to_https(config, server, "c.example")


def test_the_marked_location_is_adopted_on_the_next_run(tmp_path):
    config, server = load(tmp_path, "server {\n    listen 80;\n    location / {}\n}\n")
    assert challenge_location.ensure_challenge_location(config, server, "/w", "a.example") is None
    config.save()
    again = Config.load(config.main_path)
    assert challenge_location.ensure_challenge_location(again, again.server_blocks()[0], "/w",
                                                        "a.example") == ("/w", CHALLENGE_DIR)
    assert not again.changed
    assert (tmp_path / "sites.conf").read_text().count(edit.MARK) == 10


# The CA asks from public addresses nobody listed: a rule decides for it when
# its range holds every public address of a family (IPv4 or IPv6).
@pytest.mark.parametrize("rules, kept_out", [
    ("", False),
    ("allow 127.0.0.1; deny all;", True),
    ("allow 10.0.0.0/8; allow 127.0.0.1; deny all;", True),
    ("deny 192.0.2.1; allow all;", False),  # a blocklist: not the CA
    ("deny 198.51.100.0/24; deny 2001:db8::/32;", False),
    ("allow all; deny all;", False),  # the first rule that matches decides
    ("allow 127.0.0.1; deny 0.0.0.0/0;", True),  # every IPv4 address
    ("deny ::/0; allow all;", True),  # every IPv6 address
    ("deny 2000::/3; allow all;", True),  # every public IPv6 address
    ("allow 0.0.0.0/0; deny all;", True),  # IPv6 clients: deny all
    ("deny unix:; allow all;", False),  # unix-socket clients only
    ("allow 127.0.0.1;", False),  # no rule matches: nginx lets it pass
])
def test_access_is_judged_for_a_public_client(tmp_path, rules, kept_out):
    config, server = load(tmp_path, "server {\n    listen 80;\n    %s\n}\n" % rules)
    blocked = effective.access(config, effective.scopes(config, server, []))
    assert bool(blocked) == kept_out
    assert blocked.auth_basic is None and blocked.auth_request is None


@pytest.mark.parametrize("server_text, location_text, kept_out", [
    # a location with rules of its own replaces the server's entirely
    ("deny all;", "allow 127.0.0.1;", False),
    ("allow all;", "allow 127.0.0.1; deny all;", True),
    # satisfy any: one check that admits the CA is enough
    ('satisfy any; allow all; auth_basic "x";', "", False),
    ('satisfy any; allow 127.0.0.1; auth_basic "x";', "", True),
    ('satisfy any; auth_request /auth;', "", True),
    ('satisfy any; deny all;', "", True),
    ('satisfy all; allow all; auth_basic "x";', "", True),
    ('satisfy any; allow all; auth_basic "x";', "satisfy all;", True),
])
def test_access_in_a_location_as_nginx_merges_it(tmp_path, server_text, location_text,
                                                 kept_out):
    config, server = load(tmp_path, "server {\n    listen 80;\n    %s\n"
                          "    location /.well-known/acme-challenge/ { %s }\n}\n"
                          % (server_text, location_text))
    chain = effective.select_location(config, server, URI)
    assert bool(effective.access(config, effective.scopes(config, server, chain))) == kept_out
    problem = challenge_location.ca_kept_out(config, server, "a.example")
    assert (problem is not None) == kept_out
    if kept_out:
        assert "the location at" in problem and "sites.conf:4" in problem
        assert "keep" in problem and "the CA out" in problem


@pytest.mark.parametrize("names, expected", [
    (["example.com", "www.example.com"], "example.com"),
    ([".Example.COM", "www.example.com"], "example.com"),
    (["*.example.com"], "*.example.com"),
    (["~^(?<sub>.+)\\.example\\.com$"], "~^(?<sub>.+)\\.example\\.com$"),
    (["$HOSTNAME", "x.example"], "machine"),
    (["", "x.example"], ""),
    ([], ""),
])
def test_server_name_variable_is_the_first_name(names, expected):
    assert effective.server_name_variable(names, "machine") == expected


@pytest.mark.parametrize("root, host, expected", [
    ("/srv/$server_name", "www.example.com", "/srv/example.com"),
    ("/srv/${server_name}", "example.com", "/srv/example.com"),
    ("/srv/$host", "www.example.com", "/srv/www.example.com"),
    ("/srv/$http_host", "www.example.com", "/srv/www.example.com"),
])
def test_root_variables_have_nginxs_values(tmp_path, root, host, expected):
    config, server = load(tmp_path, "server {\n    listen 80;\n"
                          "    server_name Example.com www.example.com;\n    root %s;\n"
                          "    location /.well-known/acme-challenge/ {}\n}\n" % root)
    assert challenge_location.served_challenge_dir(config, server, host, "/") == (expected, CHALLENGE_DIR)


def test_root_with_hostname_is_the_machines_name(tmp_path):
    config, server = load(tmp_path, "server {\n    listen 80;\n    server_name x.example;\n"
                          "    root /srv/$hostname;\n"
                          "    location /.well-known/acme-challenge/ {}\n}\n")
    assert challenge_location.served_challenge_dir(config, server, "x.example", "/") == \
        (f"/srv/{effective.machine_hostname()}", CHALLENGE_DIR)


@pytest.mark.parametrize("names, root, host, expected", [
    # a hosting layout: the block chosen by its regex, whose captures name the directory
    ("~^(?<user>[a-z0-9-]+)\\.users\\.example$", "/home/$user/www", "ann.users.example",
     "/home/ann/www"),
    ("~^(?P<user>.+)\\.users\\.example$ fallback.example", "/home/${user}", "bob.users.example",
     "/home/bob"),
])
def test_root_with_server_name_captures(tmp_path, names, root, host, expected):
    config, server = load(tmp_path, "server {\n    listen 80;\n    server_name %s;\n"
                          "    root %s;\n    location /.well-known/acme-challenge/ {}\n}\n"
                          % (names, root))
    assert challenge_location.served_challenge_dir(config, server, host, "/") == (expected, CHALLENGE_DIR)


def test_captures_are_not_set_when_a_plain_name_chose_the_block(tmp_path):
    config, server = load(tmp_path, "server {\n    listen 80;\n"
                          "    server_name ~^(?<user>.+)\\.example$ www.example;\n"
                          "    root /home/$user;\n"
                          "    location /.well-known/acme-challenge/ {}\n}\n")
    with pytest.raises(sites.SiteError) as err:
        challenge_location.served_challenge_dir(config, server, "www.example", "/")
    assert "$user" in str(err.value) and "sites.conf:5" in str(err.value)
