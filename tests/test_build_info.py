"""`nginx -V` output -> version, configure arguments and the HTTP/2 form the
binary wants (pure functions; no nginx needed)."""
import pytest

from certbot_nginx_webroot import build_info as nginxctl

DEBIAN_12 = """\
nginx version: nginx/1.22.1
built with OpenSSL 3.0.17 1 Jul 2025 (running with OpenSSL 3.0.17 1 Jul 2025)
TLS SNI support enabled
configure arguments: --with-cc-opt='-g -O2 -ffile-prefix-map=/build/nginx-AoTv4W/nginx-1.22.1=. -fstack-protector-strong' --prefix=/usr/share/nginx --conf-path=/etc/nginx/nginx.conf --pid-path=/run/nginx.pid --with-http_ssl_module --with-http_v2_module --with-http_sub_module
"""
MAINLINE = """\
nginx version: nginx/1.27.4
built by gcc 12.2.0 (Debian 12.2.0-14)
built with OpenSSL 3.0.15 3 Sep 2024
TLS SNI support enabled
configure arguments: --prefix=/etc/nginx --sbin-path=/usr/sbin/nginx --with-http_ssl_module --with-http_v2_module --with-http_v3_module
"""
OPENRESTY = """\
nginx version: openresty/1.21.4.3
built with OpenSSL 1.1.1w  11 Sep 2023
configure arguments: --prefix=/usr/local/openresty/nginx --with-http_v2_module
"""
TENGINE = """\
Tengine version: Tengine/3.1.0
nginx version: nginx/1.24.0
configure arguments: --with-http_v2_module
"""
FREENGINX = """\
nginx version: freenginx/1.27.2
configure arguments: --with-http_v2_module
"""
NO_HTTP2 = """\
nginx version: nginx/1.26.3
configure arguments: --prefix=/usr/local/nginx --with-http_ssl_module
"""


@pytest.mark.parametrize("text, version, form", [
    (DEBIAN_12, (1, 22, 1), nginxctl.HTTP2_LISTEN),
    (MAINLINE, (1, 27, 4), nginxctl.HTTP2_DIRECTIVE),
    (OPENRESTY, (1, 21, 4), nginxctl.HTTP2_LISTEN),
    (TENGINE, (1, 24, 0), nginxctl.HTTP2_LISTEN),
    (FREENGINX, (1, 27, 2), nginxctl.HTTP2_DIRECTIVE),
    (NO_HTTP2, (1, 26, 3), None),
    ("nginx: [alert] could not open error log file\n", None, None),
])
def test_version_and_http2_form(text, version, form):
    info = nginxctl.parse_build_info(text)
    assert info.version == version
    assert info.http2_form == form


@pytest.mark.parametrize("version, form", [
    ("1.25.0", nginxctl.HTTP2_LISTEN),
    ("1.25.1", nginxctl.HTTP2_DIRECTIVE),  # the first with `http2 on;`
    ("1.9.5", nginxctl.HTTP2_LISTEN),      # compared as numbers, not text
    ("1.100.0", nginxctl.HTTP2_DIRECTIVE),
])
def test_http2_directive_starts_at_1_25_1(version, form):
    text = f"nginx version: nginx/{version}\nconfigure arguments: --with-http_v2_module\n"
    assert nginxctl.parse_build_info(text).http2_form == form


def test_configure_options():
    info = nginxctl.parse_build_info(DEBIAN_12)
    assert info.option("prefix") == "/usr/share/nginx"
    assert info.option("pid-path") == "/run/nginx.pid"
    assert info.option("sbin-path") is None
    assert "--with-http_sub_module" in info.configure
    assert "--with-cc-opt=-g -O2 -ffile-prefix-map=/build/nginx-AoTv4W/nginx-1.22.1=. " \
        "-fstack-protector-strong" in info.configure
