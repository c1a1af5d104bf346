#!/usr/bin/env python3
"""The demo: a local ACME CA (pebble) and nginx, a certificate for two names
issued and installed with certbot-nginx-webroot, then renewed; shows the
config diff the plugin made and the reloads each step cost, then cleans up.
Run it through ../demo.sh, which installs what it needs first.
"""
import difflib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from scenarios import lab  # noqa: E402

SITES = """\
# Two apps behind one nginx, no TLS yet.
server {
    listen {http};
    server_name shop.demo.example;
    location / {
        proxy_pass http://127.0.0.1:{backend};
    }
}

server {
    listen {http};
    server_name blog.demo.example;
    root {prefix}/www;
    location / {
        try_files $uri @app;
    }
    location @app {
        proxy_pass http://127.0.0.1:{backend};
    }
}
"""
NAMES = ["shop.demo.example", "blog.demo.example"]


def serial(der: bytes) -> str:
    import ssl
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as f:
        f.write(ssl.DER_cert_to_PEM_cert(der))
        f.flush()
        info = ssl._ssl._test_decode_cert(f.name)  # stdlib, no extra dependency
    return info["serialNumber"]


def show_diff(before, after, prefix):
    changed = False
    for path in sorted(set(before) | set(after)):
        old = before.get(path, b"").decode().splitlines(keepends=True)
        new = after.get(path, b"").decode().splitlines(keepends=True)
        rel = os.path.relpath(path, prefix)
        diff = list(difflib.unified_diff(old, new, "a/" + rel, "b/" + rel))
        if diff:
            changed = True
            sys.stdout.write("".join(diff))
    if not changed:
        print("(no config file changed)")


def main():
    print("== starting pebble (local ACME CA) and nginx on loopback")
    acme = lab.AcmeCA().start()
    nginx = lab.NginxLab()
    try:
        nginx.write("sites/demo.conf", SITES)
        nginx.start()
        certbot = lab.Certbot(os.path.join(nginx.prefix, "certbot"), acme, nginx)
        original = nginx.snapshot()

        args = ["-a", "nginx-webroot", "-i", "nginx-webroot", *certbot.plugin_args(),
                "--redirect"]
        for name in NAMES:
            args += ["-d", name]
        print("== certbot " + " ".join(args))
        certbot.run(*args)
        issued = nginx.snapshot()
        print(f"== issued and installed with {nginx.reloads()} reload(s); the plugin's edits:")
        show_diff(original, issued, nginx.prefix)
        first = lab.served_cert_der(NAMES[0])

        print("\n== certbot renew --force-renewal --no-random-sleep-on-renew")
        reloads = nginx.reloads()
        certbot.run("renew", "--force-renewal", "--no-random-sleep-on-renew")
        print(f"== renewed with {nginx.reloads() - reloads} reload(s); config changes:")
        show_diff(issued, nginx.snapshot(), nginx.prefix)
        for name in NAMES:
            print(f"   {name}: served serial {serial(first)} -> "
                  f"{serial(lab.served_cert_der(name))}")
        status, _ = lab.http_get(NAMES[0], "/")
        print(f"   http://{NAMES[0]}/ answers {status} (redirect to HTTPS); the challenge "
              "path stays on HTTP")
    finally:
        nginx.stop()
        acme.stop()
        print("== cleaned up (nginx and pebble stopped, temporary files removed)")


if __name__ == "__main__":
    main()
