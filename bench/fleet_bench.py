#!/usr/bin/env python3
"""This plugin driving N nginx nodes behind HAProxy (the fleet lab: each
node its own namespaces, nginx and sshd; real pebble and certbot), for 2, 3
and 5 nodes: wall time of the first run (issue and install on every node)
and of a forced renewal, reloads per node in that renewal, failed requests
through the balancer during it (HTTP and TLS handshakes in turn), and the
nodes not serving the new certificate when certbot exited.

    python3 bench/fleet_bench.py [--nodes 2,3,5]

Runs in a network namespace of its own (unshare -n, as root).  Prints a
table; asserts nothing.  The blog recipe (a fallback location to one ACME
node typed on every node, a deploy hook with rsync and ssh reloads) is not
measured here yet.
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), os.path.join(os.path.dirname(HERE), "tests")]

import fleetlab  # noqa: E402
import lab  # noqa: E402
import test_e2e_fleet as fleet_tests  # noqa: E402


def one(acme, count):
    fleet = fleetlab.Fleet(count).start()
    try:
        for node in fleet.nodes:
            node.write("nginx/sites/site.conf", fleet_tests.SITE)
            node.run(fleetlab.NODE_NGINX, "-c", node.conf, "-s", "reload")
        time.sleep(0.5)
        certbot = lab.Certbot(os.path.join(fleet.view, "certbot"), acme, None)
        started = time.monotonic()
        certbot.run("run", "-a", "nginx-webroot", "-i", "nginx-webroot",
                    *fleet_tests.fleet_args(fleet),
                    *sum((["-d", name] for name in fleet_tests.NAMES), []))
        first = time.monotonic() - started
        reloads = [node.reloads() for node in fleet.nodes]
        with fleet_tests.Load(fleet) as load:
            started = time.monotonic()
            certbot.run("renew", "--force-renewal", "--no-random-sleep-on-renew")
            renew = time.monotonic() - started
            renewed = lab.leaf_der(certbot.live(fleet_tests.NAMES[0]))
            behind = [node.name for node in fleet.nodes for name in fleet_tests.NAMES
                      if fleet_tests.served(node, name) != renewed]
        per_node = [node.reloads() - n for node, n in zip(fleet.nodes, reloads)]
        return first, renew, per_node, load, behind
    finally:
        fleet.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", default="2,3,5")
    args = parser.parse_args()
    acme = lab.AcmeCA().start()
    try:
        print(f"{'nodes':>5} {'first run s':>11} {'renew s':>8} {'reloads/node':>13} "
              f"{'requests':>8} {'failed':>6} {'behind at exit':>14}")
        for count in [int(n) for n in args.nodes.split(",")]:
            first, renew, per_node, load, behind = one(acme, count)
            print(f"{count:>5} {first:>11.1f} {renew:>8.1f} {','.join(map(str, per_node)):>13} "
                  f"{load.done:>8} {len(load.failed):>6} {len(behind):>14}")
    finally:
        acme.stop()


if __name__ == "__main__":
    main()
