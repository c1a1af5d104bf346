#!/usr/bin/env python3
"""Hosting scale: one `certbot renew` run over N sites, one lineage each.

For each N, in one run against the same pebble, three kinds:

- ``nginx-webroot``: this plugin as authenticator and installer;
- ``certbot-nginx``: certbot's own nginx plugin (``--nginx``);
- ``webroot-floor``: ``certonly --webroot`` with a hand-made challenge
  location and no reload at all: certbot's own ACME round trips, the floor
  any installer adds to.

Issues all N lineages, then times one ``certbot renew --force-renewal
--no-random-sleep-on-renew`` while a probe opens fresh connections (HTTP,
and HTTPS with SNI, rotating over the N names) 20 times a second, and a
sampler counts nginx worker processes (old ones still draining included).

    python3 bench/renew_run_bench.py [--sites 10,50] [--kinds ...]

Prints one table; asserts nothing.
"""
import argparse
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from renew_under_load import Probe  # noqa: E402
from scenarios import MANUAL_SITE, PROXY_SITE, lab  # noqa: E402

KINDS = ("nginx-webroot", "certbot-nginx", "webroot-floor")

class RotatingProbe(Probe):
    """Probe's fresh connections, each to the next of the N names."""

    def __init__(self, names, https: bool) -> None:
        super().__init__(names[0])
        self.names = names
        self.https = https
        self.i = 0

    def get(self, tls: bool) -> str:
        if tls and not self.https:
            return "ok"
        self.name_ = self.names[self.i % len(self.names)]
        self.i += 1
        return super().get(tls)


class WorkerSampler(threading.Thread):
    """Peak number of nginx worker processes under the lab's master."""

    def __init__(self, master: int) -> None:
        super().__init__(daemon=True)
        self.master = master
        self.peak = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        from certbot_nginx_webroot.controllers import local as nginxctl
        while not self.stop_event.is_set():
            workers = [t for t in nginxctl.children_of(self.master).values()
                       if t.startswith("nginx: worker process")]
            self.peak = max(self.peak, len(workers))
            time.sleep(0.02)


def issue_args(kind, certbot, nginx, name):
    if kind == "nginx-webroot":
        return ["-a", "nginx-webroot", "-i", "nginx-webroot", *certbot.plugin_args(),
                "--cert-name", name, "-d", name, "--no-redirect"]
    if kind == "certbot-nginx":
        return ["--nginx", "--nginx-server-root", nginx.prefix, "--nginx-ctl",
                lab.nginx_binary(), "--cert-name", name, "-d", name, "--no-redirect"]
    return ["certonly", "--webroot", "-w", nginx.webroot, "--cert-name", name, "-d", name]


def run(kind: str, acme, n: int) -> dict:
    nginx = lab.NginxLab()
    names = [f"site{i:04d}.bench.example" for i in range(n)]
    try:
        for name in names:
            nginx.write(f"sites/{name}.conf",
                        (MANUAL_SITE if kind == "webroot-floor" else PROXY_SITE)
                        .replace("{name}", name))
        nginx.start()
        certbot = lab.Certbot(os.path.join(nginx.prefix, "certbot"), acme, nginx)
        start = time.monotonic()
        for name in names:
            certbot.run(*issue_args(kind, certbot, nginx, name))
        issue_s = time.monotonic() - start
        reloads = nginx.reloads()
        probe = RotatingProbe(names, https=kind != "webroot-floor")
        sampler = WorkerSampler(nginx.master_pid())
        probe.start()
        sampler.start()
        time.sleep(0.5)
        start = time.monotonic()
        proc = certbot.run("renew", "--force-renewal", "--no-random-sleep-on-renew", check=False)
        wall = time.monotonic() - start
        time.sleep(0.5)
        probe.stop_event.set()
        sampler.stop_event.set()
        probe.join()
        sampler.join()
        served_new = kind == "webroot-floor" or all(
            lab.served_cert_der(name) == lab.leaf_der(certbot.live(name)) for name in names)
        return dict(kind=kind, n=n, exit=proc.returncode, reloads=nginx.reloads() - reloads,
                    issue_s=issue_s, wall=wall, per=wall / n, peak=sampler.peak,
                    fail=sum(outcome != "ok" for _, _, outcome in probe.results),
                    probes=len(probe.results), served_new=served_new)
    finally:
        nginx.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", default="10,50")
    parser.add_argument("--kinds", default=",".join(KINDS))
    args = parser.parse_args()
    acme = lab.AcmeCA().start()
    rows = []
    try:
        for n in (int(x) for x in args.sites.split(",")):
            for kind in args.kinds.split(","):
                row = run(kind, acme, n)
                rows.append(row)
                print(f"# {kind} N={n}: issued in {row['issue_s']:.1f} s, "
                      f"renewed in {row['wall']:.1f} s", file=sys.stderr, flush=True)
    finally:
        acme.stop()
    print(f"{'kind':<15} {'N':>4} {'exit':>4} {'reloads':>7} {'wall s':>7} {'s/lineage':>9} "
          f"{'peak workers':>12} {'probe fail':>14} {'new cert at exit':>16}")
    for r in rows:
        print(f"{r['kind']:<15} {r['n']:>4} {r['exit']:>4} {r['reloads']:>7} {r['wall']:>7.1f} "
              f"{r['per']:>9.3f} {r['peak']:>12} {r['fail']:>5} of {r['probes']:<6} "
              f"{str(r['served_new']):>16}")


if __name__ == "__main__":
    main()
