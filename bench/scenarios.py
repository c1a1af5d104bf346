"""The three ways to get a certificate into nginx that the benchmarks compare,
each in its own fresh nginx lab against the same pebble:

- ``nginx-webroot``: this plugin, ``-a nginx-webroot -i nginx-webroot``;
- ``certbot-nginx``: certbot's own nginx plugin, ``--nginx``;
- ``manual``: the blog recipe, ``certonly --webroot`` with a hand-written
  challenge location and ``--deploy-hook`` reloading nginx, plus a hand-made
  443 block.
"""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

import lab  # noqa: E402

KINDS = ("nginx-webroot", "certbot-nginx", "manual")

PROXY_SITE = """\
server {
    listen {http};
    server_name {name};
    location / {
        proxy_pass http://127.0.0.1:{backend};
    }
}
"""

MANUAL_SITE = """\
server {
    listen {http};
    server_name {name};
    location ^~ /.well-known/acme-challenge/ {
        root {prefix}/webroot;
    }
    location / {
        proxy_pass http://127.0.0.1:{backend};
    }
}
"""

MANUAL_TLS = """\
server {
    listen {https} ssl;
    server_name {name};
    ssl_certificate {live}/fullchain.pem;
    ssl_certificate_key {live}/privkey.pem;
    location / {
        proxy_pass http://127.0.0.1:{backend};
    }
}
"""


class Scenario:
    """One kind, one lab: issue() then renew() with real certbot."""

    def __init__(self, kind: str, acme: lab.AcmeCA, name: str, certbot_command=None) -> None:
        self.kind = kind
        self.name = name
        self.nginx = lab.NginxLab()
        self.certbot = lab.Certbot(os.path.join(self.nginx.prefix, "certbot"), acme,
                                   self.nginx, certbot_command)
        site = MANUAL_SITE if kind == "manual" else PROXY_SITE
        self.nginx.write("sites/site.conf", site.replace("{name}", name))
        self.nginx.start()

    def issue_args(self):
        nginx = lab.nginx_binary()
        if self.kind == "nginx-webroot":
            return ["-a", "nginx-webroot", "-i", "nginx-webroot", *self.certbot.plugin_args(),
                    "-d", self.name, "--no-redirect"]
        if self.kind == "certbot-nginx":
            return ["--nginx", "--nginx-server-root", self.nginx.prefix, "--nginx-ctl", nginx,
                    "-d", self.name, "--no-redirect"]
        return ["certonly", "--webroot", "-w", self.nginx.webroot, "-d", self.name,
                "--deploy-hook", f"{nginx} -c {self.nginx.conf} -s reload"]

    def issue(self):
        proc = self.certbot.run(*self.issue_args())
        if self.kind == "manual":  # the admin types the 443 block, then reloads
            live = os.path.dirname(self.certbot.live(self.name))
            self.nginx.write("sites/tls.conf", MANUAL_TLS.replace("{name}", self.name)
                             .replace("{live}", live))
            subprocess.run([lab.nginx_binary(), "-c", self.nginx.conf, "-s", "reload"],
                           check=True)
            self._wait_until_served()  # as the admin would check before moving on
        return proc

    def _wait_until_served(self, timeout: float = 10.0) -> None:
        want = lab.leaf_der(self.certbot.live(self.name))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if lab.served_cert_der(self.name) == want:
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"{self.name}: the certificate is not served after {timeout} s")

    def renew(self, check=True):
        return self.certbot.run("renew", "--force-renewal", "--no-random-sleep-on-renew",
                                check=check)

    def stop(self):
        self.nginx.stop()
