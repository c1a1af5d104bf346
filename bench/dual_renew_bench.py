#!/usr/bin/env python3
"""Renewals of an RSA and an ECDSA lineage served side by side from one
server block, against a site with one ECDSA lineage, in the same lab (real
pebble, nginx and certbot): reloads, config files changed, wall time, and
whether each kind of client (a default handshake; TLS 1.2 with RSA ciphers
only) was served the renewed certificate when certbot exited.

    python3 bench/dual_renew_bench.py [--renewals N]

Prints a table; asserts nothing.
"""
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), os.path.join(os.path.dirname(HERE), "tests")]

import lab  # noqa: E402
from certbot_nginx_webroot import probes  # noqa: E402

SITE = """\
server {
    listen {http};
    server_name %s;
    location / { proxy_pass http://127.0.0.1:{backend}; }
}
"""


def served(name, key_type=None):
    return probes.served_certificate(name, "*", lab.HTTPS_PORT, key_type=key_type)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--renewals", type=int, default=3)
    args = ap.parse_args()
    acme = lab.AcmeCA().start()
    nginx = lab.NginxLab()
    rows = []
    try:
        nginx.write("sites/one.conf", SITE % "one.example")
        nginx.write("sites/dual.conf", SITE % "dual.example")
        nginx.start()
        certbot = lab.Certbot(os.path.join(nginx.prefix, "certbot"), acme, nginx)
        for name, lineage, key_type in (("one.example", "one", "ecdsa"),
                                        ("dual.example", "dual-ecdsa", "ecdsa"),
                                        ("dual.example", "dual-rsa", "rsa")):
            certbot.run("-a", "nginx-webroot", "-i", "nginx-webroot", *certbot.plugin_args(),
                        "-d", name, "--no-redirect", "--key-type", key_type,
                        "--cert-name", lineage)
        # (label, renew arguments, (name, kind of client, lineage) that must be new)
        cases = [("one lineage (ECDSA)", ["--cert-name", "one"], [("one.example", None, "one")]),
                 ("dual: the RSA lineage", ["--cert-name", "dual-rsa"],
                  [("dual.example", "rsa", "dual-rsa")]),
                 ("dual: the ECDSA lineage", ["--cert-name", "dual-ecdsa"],
                  [("dual.example", None, "dual-ecdsa")]),
                 ("all three in one run", [], [("one.example", None, "one"),
                                               ("dual.example", "rsa", "dual-rsa"),
                                               ("dual.example", None, "dual-ecdsa")])]
        for label, select, clients in cases:
            results = []
            for _ in range(args.renewals):
                before, reloads = nginx.snapshot(), nginx.reloads()
                old = {lineage: lab.leaf_der(certbot.live(lineage)) for _, _, lineage in clients}
                start = time.perf_counter()
                certbot.run("renew", *select, "--force-renewal", "--no-random-sleep-on-renew")
                wall = time.perf_counter() - start
                live = all(served(name, kind) == lab.leaf_der(certbot.live(lineage)) !=
                           old[lineage] for name, kind, lineage in clients)
                after = nginx.snapshot()
                files = sum(1 for p in set(before) | set(after) if before.get(p) != after.get(p))
                results.append((nginx.reloads() - reloads, files, wall, live))
            rows.append((label, results))
    finally:
        nginx.stop()
        acme.stop()
    print(f"{'renewal (certbot renew --force-renewal)':<42}{'reloads':>8}{'files':>7}"
          f"{'wall s (median)':>17}{'live at exit':>14}")
    for label, results in rows:
        print(f"{label:<42}{'/'.join(str(r[0]) for r in results):>8}"
              f"{max(r[1] for r in results):>7}{statistics.median(r[2] for r in results):>17.2f}"
              f"{sum(r[3] for r in results):>11}/{len(results)}")


if __name__ == "__main__":
    main()
