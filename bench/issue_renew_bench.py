#!/usr/bin/env python3
"""Issue and renew with this plugin, certbot's own nginx plugin and the manual
webroot recipe, in the same lab (real pebble, real nginx, real certbot):
reloads, config files changed, wall time, and whether the new certificate
was served when certbot exited.

    python3 bench/issue_renew_bench.py [--renewals N]

Prints a table; asserts nothing.
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from scenarios import KINDS, Scenario, lab  # noqa: E402


def changed_files(before, after):
    return sum(1 for path in set(before) | set(after) if before.get(path) != after.get(path))


def measure(step, scenario):
    before, reloads = scenario.nginx.snapshot(), scenario.nginx.reloads()
    start = time.perf_counter()
    step()
    wall = time.perf_counter() - start
    try:
        live = lab.served_cert_der(scenario.name) == lab.leaf_der(
            scenario.certbot.live(scenario.name))
    except OSError:  # nothing listens yet: the new configuration is not live
        live = False
    return (scenario.nginx.reloads() - reloads, changed_files(before, scenario.nginx.snapshot()),
            wall, live)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--renewals", type=int, default=3)
    args = ap.parse_args()
    acme = lab.AcmeCA().start()
    rows = []
    try:
        for kind in KINDS:
            scenario = Scenario(kind, acme, f"{kind}.example")
            try:
                issue = measure(scenario.issue, scenario)
                renewals = [measure(scenario.renew, scenario) for _ in range(args.renewals)]
            finally:
                scenario.stop()
            rows.append((kind, issue, renewals))
    finally:
        acme.stop()
    print(f"{'':<15}{'issue':>36}   {'renew (median of %d)' % args.renewals:>38}")
    print(f"{'kind':<15}{'reloads':>9}{'files':>7}{'wall s':>9}{'live':>7}   "
          f"{'reloads':>9}{'files':>7}{'wall s':>9}{'live at exit':>13}")
    for kind, (r, f, w, live), renewals in rows:
        rr = statistics.median(x[0] for x in renewals)
        rf = statistics.median(x[1] for x in renewals)
        rw = statistics.median(x[2] for x in renewals)
        rl = sum(x[3] for x in renewals)
        print(f"{kind:<15}{r:>9}{f:>7}{w:>9.2f}{str(live):>7}   "
              f"{rr:>9g}{rf:>7g}{rw:>9.2f}{f'{rl}/{len(renewals)}':>13}")


if __name__ == "__main__":
    main()
