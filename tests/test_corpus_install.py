"""Install into a real-world configuration tree from ../shared/corpus (copied
to a temporary directory; the corpus itself is never written) and let the
real nginx judge the result with nginx -t."""
import os
import shutil
import subprocess

import pytest

import lab
from certbot_nginx_webroot.controllers.local import LocalNginx
from certbot_nginx_webroot import (
    build_info, certificate_lines, challenge_location, edit, https_server, parser, sites)
from certbot_nginx_webroot.config import Config
from conftest import CORPUS

H5BP = os.path.join(CORPUS, "h5bp-server-configs-nginx")
pytestmark = [
    pytest.mark.skipif(not os.path.isdir(H5BP),
                       reason="../shared/corpus is not beside the project"),
    pytest.mark.skipif(not os.path.exists(lab.nginx_binary()) and not os.environ.get("CI"),
                       reason="nginx is not installed"),
]


def nginx_t(conf):
    return subprocess.run([lab.nginx_binary(), "-t", "-c", conf], capture_output=True, text=True)


def snapshot(root):
    return {os.path.relpath(os.path.join(d, f), root): open(os.path.join(d, f), "rb").read()
            for d, _, fs in os.walk(root) for f in fs}


def install_into_h5bp(tmp_path, http2):
    """A copy of the h5bp tree with the plugin's edits for example.com saved:
    (root, nginx.conf, snapshot before)."""
    root = tmp_path / "nginx"
    shutil.copytree(H5BP, root)
    conf = str(root / "nginx.conf")
    assert nginx_t(conf).returncode == 0
    before = snapshot(root)
    cert = tmp_path / "cert.pem"
    key = tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=x",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)

    config = Config.load(conf)
    http = sites.answering(config, "example.com", 80)
    assert [m.server.ref.file for m in http] == [str(root / "conf.d/no-ssl.default.conf")]
    server = http[0].server.ref
    # Its "return 444" would answer first: a guard lets challenges past it.
    challenge_location.ensure_challenge_location(config, server, str(tmp_path / "webroot"), "example.com")
    copy = https_server.make_https_server(config, http[0], "example.com", 80, 443, http2)
    certificate_lines.set_certificate(config, copy, str(cert), str(key), 443)
    assert config.save() == [str(root / "conf.d/no-ssl.default.conf")]
    return root, conf, before


def binary_http2_form():
    return LocalNginx(lab.nginx_binary(), "unused").build_info().http2_form


def test_the_other_http2_form_is_wrong_for_this_nginx(tmp_path):
    # Why the plugin reads `nginx -V`: nginx before 1.25.1 rejects `http2 on;`,
    # and from 1.25.1 warns that `listen ... http2` is deprecated.
    own = binary_http2_form()
    other = {build_info.HTTP2_LISTEN: build_info.HTTP2_DIRECTIVE,
             build_info.HTTP2_DIRECTIVE: build_info.HTTP2_LISTEN}[own]
    _, conf, _ = install_into_h5bp(tmp_path, other)
    result = nginx_t(conf)
    if own == build_info.HTTP2_LISTEN:
        assert result.returncode != 0 and 'unknown directive "http2"' in result.stderr
    else:
        assert result.returncode == 0
        assert 'the "listen ... http2" directive is deprecated' in result.stderr


def test_h5bp_catch_all_gets_the_location_and_a_https_block(tmp_path):
    # HTTP/2 in the form the installed nginx wants (`listen ... http2` on 1.22).
    http2 = binary_http2_form()
    assert http2 is not None
    root, conf, before = install_into_h5bp(tmp_path, http2)

    result = nginx_t(conf)
    assert result.returncode == 0, result.stderr
    after = snapshot(root)
    changed = [path for path in after if after[path] != before.get(path)]
    assert changed == ["conf.d/no-ssl.default.conf"]
    text = after["conf.d/no-ssl.default.conf"].decode()
    assert text.startswith(before["conf.d/no-ssl.default.conf"].decode().split("server {")[0])
    assert "deferred" not in text.split("\n\nserver {")[-1]  # socket options stay on :80
    if http2 == build_info.HTTP2_LISTEN:
        assert f"listen [::]:443 ssl http2;  {edit.MARK}" in text
    else:
        assert f"listen [::]:443 ssl;  {edit.MARK}" in text
        assert f"listen 443 ssl;  {edit.MARK}\n  http2 on;  {edit.MARK}" in text
    # h5bp's 2 spaces; the user's return stays where it was
    assert f"\n  if ($uri ~ \"{challenge_location.challenge_uri_pattern()}\") {{  {edit.MARK}\n" \
        f"    break;  {edit.MARK}\n  }}  {edit.MARK}\n\n  # (1)\n" in text
    assert "\n  return 444;\n" in text
    # The HTTPS copy of the catch-all holds what HTTPS needs: its return 444
    # answers every request there, so no location (issue 20 C5).
    https = [m.server.ref for m in sites.answering(Config.load(conf), "example.com", 443,
                                                   use_default=False)]
    assert len(https) == 1 and "location" not in parser.dump_node(https[0])
    # A second look finds everything in place and edits nothing (the plugin
    # looks at HTTPS blocks only when a :80 block lacks the location).
    again = Config.load(conf)
    for match in sites.answering(again, "example.com", 80):
        challenge_location.ensure_challenge_location(again, match.server.ref, str(tmp_path / "webroot"),
                                                     "example.com")
    assert not again.changed
