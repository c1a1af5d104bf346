#!/usr/bin/env python3
"""The plugin's own cost to certbot:

1. `certbot plugins` wall time with and without this plugin installed (the
   "without" run hides its entry point from importlib.metadata, in the same
   environment);
2. the import of the plugin module on top of certbot (python -X importtime);
3. certbot start to its first ACME request, in the lab, for a renewal with
   this plugin, with certbot's own nginx plugin and with --webroot.

    python3 bench/overhead.py [--repeat N]

Medians of N runs; prints numbers, asserts nothing.
"""
import argparse
import datetime
import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from scenarios import KINDS, Scenario, lab  # noqa: E402

# Measure as installed packages run: with byte code (pip writes it on install).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

HIDE_PLUGIN = """
import importlib.metadata as md, sys
_orig = md.entry_points
def entry_points(**kw):
    eps = _orig(**kw)
    if kw.get("group") == "certbot.plugins":
        return md.EntryPoints(e for e in eps if not e.value.startswith("certbot_nginx_webroot"))
    return eps
md.entry_points = entry_points
from certbot.main import main
sys.exit(main())
"""
SHOW_PLUGIN = "import sys\nfrom certbot.main import main\nsys.exit(main())\n"


def certbot_plugins(code: str, workdir: str) -> float:
    args = ["plugins", "--text", "--config-dir", f"{workdir}/c", "--work-dir", f"{workdir}/w",
            "--logs-dir", f"{workdir}/l"]
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         check=True, env=ENV).stdout
    elapsed = time.perf_counter() - start
    return elapsed, ("nginx-webroot" in out)


def import_cost() -> float:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c",
                           "import certbot.main, certbot.plugins.common, acme.challenges; "
                           "import certbot_nginx_webroot.plugin"],
                          capture_output=True, text=True, check=True, env=ENV)
    total = 0
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|\s+(\S.*)$", line)
        if m and m.group(3).strip() == "certbot_nginx_webroot.plugin":
            total = int(m.group(2))
    return total / 1e6


def first_acme_request(scenario: Scenario) -> float:
    log = os.path.join(scenario.certbot.directory, "logs", "letsencrypt.log")
    if os.path.exists(log):
        os.remove(log)
    start = time.time()
    scenario.renew()
    with open(log) as f:
        for line in f:
            if "Sending GET request to" in line:
                stamp = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
                return stamp.timestamp() - start
    raise RuntimeError("no ACME request in the log")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    import tempfile
    subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "certbot_nginx_webroot")],
        check=True)
    with tempfile.TemporaryDirectory() as workdir:
        with_plugin = [certbot_plugins(SHOW_PLUGIN, workdir) for _ in range(args.repeat)]
        without = [certbot_plugins(HIDE_PLUGIN, workdir) for _ in range(args.repeat)]
    assert all(seen for _, seen in with_plugin) and not any(seen for _, seen in without)
    print(f"`certbot plugins` wall time, median of {args.repeat}:")
    print(f"  with nginx-webroot installed     {statistics.median(t for t, _ in with_plugin):.3f} s")
    print(f"  without it (entry point hidden)  {statistics.median(t for t, _ in without):.3f} s")
    print(f"import of certbot_nginx_webroot.plugin on top of certbot: "
          f"{statistics.median(import_cost() for _ in range(args.repeat)) * 1000:.1f} ms")
    acme = lab.AcmeCA().start()
    try:
        print(f"certbot start to first ACME request (renewal), median of {args.repeat}:")
        for kind in KINDS:
            scenario = Scenario(kind, acme, f"{kind}.example")
            try:
                scenario.issue()
                times = [first_acme_request(scenario) for _ in range(args.repeat)]
            finally:
                scenario.stop()
            print(f"  {kind:<15} {statistics.median(times):.3f} s")
    finally:
        acme.stop()


if __name__ == "__main__":
    main()
