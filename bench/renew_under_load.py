#!/usr/bin/env python3
"""Renewal under load: `certbot renew --force-renewal` while wrk loads nginx
and a 20 Hz probe opens fresh connections (HTTP, and HTTPS with SNI) and
GETs a page; for this plugin, certbot's own nginx plugin and the manual
webroot recipe, in the same run, against the same pebble.

    python3 bench/renew_under_load.py [--window S] [--connections C]

Prints one table; asserts nothing.  Load is modest on purpose (2 cores):
it should measure the plugins, not the machine.
"""
import argparse
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from scenarios import KINDS, Scenario, lab  # noqa: E402

PROBE_HZ = 20


class Probe(threading.Thread):
    """Fresh connection per request, on both ports, PROBE_HZ times a second."""

    def __init__(self, name: str) -> None:
        super().__init__(daemon=True)
        self.name_ = name
        self.stop_event = threading.Event()
        self.results = []  # (time, port kind, outcome)
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.tls.check_hostname = False
        self.tls.verify_mode = ssl.CERT_NONE

    def get(self, tls: bool) -> str:
        port = lab.HTTPS_PORT if tls else lab.HTTP_PORT
        request = (f"GET / HTTP/1.1\r\nHost: {self.name_}\r\nConnection: close\r\n"
                   "\r\n").encode()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as raw:
                sock = self.tls.wrap_socket(raw, server_hostname=self.name_) if tls else raw
                sock.sendall(request)
                head = sock.recv(64)
            if not head:
                return "reset"
            status = int(head.split(b" ", 2)[1])
            return "ok" if 200 <= status < 300 else "non-2xx"
        except ConnectionRefusedError:
            return "refused"
        except (socket.timeout, TimeoutError):
            return "timeout"
        except (OSError, ssl.SSLError, ValueError, IndexError):
            return "reset"

    def run(self) -> None:
        period = 1.0 / PROBE_HZ
        next_at = time.monotonic()
        while not self.stop_event.is_set():
            for tls in (False, True):
                self.results.append((time.monotonic(), tls, self.get(tls)))
            next_at += period
            time.sleep(max(0.0, next_at - time.monotonic()))

    def longest_gap(self, start: float, end: float) -> float:
        worst = 0.0
        for tls in (False, True):
            last = start
            for t, kind, outcome in self.results:
                if kind == tls and outcome == "ok" and start <= t <= end:
                    worst = max(worst, t - last)
                    last = t
            worst = max(worst, end - last)
        return worst


def wrk(url: str, host: str, seconds: int, connections: int) -> subprocess.Popen:
    return subprocess.Popen(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "2s",
                             "-H", f"Host: {host}", url],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wrk_failures(output: str) -> dict:
    found = {"connect": 0, "read": 0, "write": 0, "timeout": 0, "non-2xx": 0, "requests": 0}
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if m:
        for key, value in zip(("connect", "read", "write", "timeout"), m.groups(), strict=True):
            found[key] = int(value)
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if m:
        found["non-2xx"] = int(m.group(1))
    m = re.search(r"(\d+) requests in", output)
    if m:
        found["requests"] = int(m.group(1))
    return found


def run_kind(kind: str, acme, window: int, connections: int) -> dict:
    scenario = Scenario(kind, acme, f"{kind}.example")
    try:
        scenario.issue()
        before, reloads = scenario.nginx.snapshot(), scenario.nginx.reloads()
        probe = Probe(scenario.name)
        loads = [wrk(f"http://127.0.0.1:{lab.HTTP_PORT}/", scenario.name, window, connections),
                 wrk(f"https://127.0.0.1:{lab.HTTPS_PORT}/", scenario.name, window, connections)]
        probe.start()
        time.sleep(1.0)
        start = time.monotonic()
        proc = scenario.renew(check=False)
        end = time.monotonic()
        try:
            live = lab.served_cert_der(scenario.name) == lab.leaf_der(
                scenario.certbot.live(scenario.name))
        except OSError:  # nothing listens yet: the new configuration is not live
            live = False
        time.sleep(0.5)  # a little load after the renewal too
        probe.stop_event.set()
        probe.join()
        outputs = [load.communicate()[0] for load in loads]
        after = scenario.nginx.snapshot()
        wrk_total = {}
        for out in outputs:
            for key, value in wrk_failures(out).items():
                wrk_total[key] = wrk_total.get(key, 0) + value
        window_results = [r for r in probe.results if start - 1.0 <= r[0]]
        probe_fail = {k: sum(1 for r in window_results if r[2] == k)
                      for k in ("refused", "reset", "timeout", "non-2xx")}
        return {
            "kind": kind, "exit": proc.returncode,
            "reloads": scenario.nginx.reloads() - reloads,
            "files": sum(1 for p in set(before) | set(after) if before.get(p) != after.get(p)),
            "wall": end - start, "probe": probe_fail, "probes": len(window_results),
            "wrk": wrk_total, "gap": probe.longest_gap(start - 1.0, end + 0.5), "live": live,
        }
    finally:
        scenario.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--window", type=int, default=12,
                    help="seconds wrk runs; the renewal starts 1 s in")
    ap.add_argument("--connections", type=int, default=2, help="wrk connections per port")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    acme = lab.AcmeCA().start()
    try:
        rows = [run_kind(kind, acme, args.window, args.connections) for kind in KINDS]
    finally:
        acme.stop()
    print(f"certbot renew --force-renewal under load: wrk -t1 -c{args.connections} on each of "
          f"HTTP and HTTPS, plus a {PROBE_HZ} Hz fresh-connection probe on each")
    print(f"{'kind':<15}{'exit':>5}{'reloads':>8}{'files':>6}{'wall s':>8}"
          f"{'probe fail r/R/t/5':>20}{'wrk fail c/r/w/t/5':>20}{'wrk reqs':>9}"
          f"{'gap ms':>8}{'new cert at exit':>18}")
    for r in rows:
        p, w = r["probe"], r["wrk"]
        probe = f"{p['refused']}/{p['reset']}/{p['timeout']}/{p['non-2xx']} of {r['probes']}"
        load = f"{w['connect']}/{w['read']}/{w['write']}/{w['timeout']}/{w['non-2xx']}"
        print(f"{r['kind']:<15}{r['exit']:>5}{r['reloads']:>8}{r['files']:>6}{r['wall']:>8.2f}"
              f"{probe:>20}{load:>20}{w['requests']:>9}{r['gap'] * 1000:>8.0f}"
              f"{str(r['live']):>18}")
    print("probe fail: refused/reset/timeout/non-2xx; wrk fail: connect/read/write/timeout/"
          "non-2xx; gap: longest time without a successful probe on either port")


if __name__ == "__main__":
    main()
