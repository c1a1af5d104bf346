"""Which TLS blocks get a name's certificate (no certbot, no nginx)."""

from certbot_nginx_webroot import placement
from site_configs import load


def test_tls_blocks_on_every_port_get_the_certificate(tmp_path):
    config = load(tmp_path, "server { listen 80; server_name a.example;"
                  " return 301 https://$host:8443$request_uri; }\n"
                  "server { listen 8443; ssl on; server_name a.example; }\n"
                  "server { listen 8444 ssl; server_name a.example; }\n"
                  "server { listen 9000; server_name a.example; }\n"  # plain HTTP
                  "server { listen 8445 ssl default_server; server_name _; }\n")
    found = placement.tls_blocks(config, "a.example", 443)
    assert [(block.line, port) for block, port in found] == [(2, 8443), (3, 8444)]
