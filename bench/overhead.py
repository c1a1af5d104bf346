#!/usr/bin/env python3
"""The plugin's own cost to certbot, measured as users run it: from a wheel
installed in a virtual environment of its own (an editable install adds an
import hook of ~20 ms that users do not have).

1. `certbot plugins` wall time with and without this plugin installed (the
   "without" run hides its entry point from importlib.metadata);
2. the import of the plugin's entry-point module on top of certbot
   (python -X importtime);
3. certbot start to its first ACME request, in the lab, for a renewal with
   this plugin, with certbot's own nginx plugin and with --webroot.

    python3 bench/overhead.py [--repeat N] [--venv DIR]

Medians of N runs; prints numbers, asserts nothing.  Builds the venv on
first use (pip, same certbot version as this machine's).
"""
import argparse
import datetime
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from scenarios import KINDS, Scenario, lab  # noqa: E402

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
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def make_venv(path: str) -> str:
    python = os.path.join(path, "bin", "python")
    if not os.path.exists(python):
        import certbot
        subprocess.run([sys.executable, "-m", "venv", path], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", f"certbot=={certbot.__version__}",
                        f"certbot-nginx=={certbot.__version__}"], check=True, env=ENV)
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall",
                    ROOT], check=True, env=ENV)
    return python


def certbot_plugins(python: str, code: str, workdir: str):
    args = ["plugins", "--text", "--config-dir", f"{workdir}/c", "--work-dir", f"{workdir}/w",
            "--logs-dir", f"{workdir}/l"]
    start = time.perf_counter()
    out = subprocess.run([python, "-c", code, *args], capture_output=True, text=True,
                         check=True, env=ENV).stdout
    return time.perf_counter() - start, "nginx-webroot" in out


def import_cost(python: str) -> float:
    proc = subprocess.run([python, "-X", "importtime", "-c",
                           "import certbot.main, certbot.plugins.common, acme.challenges; "
                           "import certbot_nginx_webroot.plugin"],
                          capture_output=True, text=True, check=True, env=ENV)
    total = 0
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S.*)$", line)
        if m and m.group(4).startswith("certbot_nginx_webroot") and len(m.group(3)) <= 1:
            total += int(m.group(2))  # top-level entries only
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
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--venv", default=os.path.join(tempfile.gettempdir(),
                                                   "certbot-nginx-webroot-bench-venv"))
    args = ap.parse_args()
    python = make_venv(args.venv)
    with tempfile.TemporaryDirectory() as workdir:
        runs = []
        for _ in range(args.repeat):  # interleaved, so drift hits both alike
            runs.append((certbot_plugins(python, SHOW_PLUGIN, workdir),
                         certbot_plugins(python, HIDE_PLUGIN, workdir)))
    assert all(shown[1] and not hidden[1] for shown, hidden in runs)
    print(f"installed from a wheel in {args.venv}; medians of {args.repeat}")
    print("`certbot plugins` wall time:")
    print(f"  with nginx-webroot installed     {statistics.median(r[0][0] for r in runs):.3f} s")
    print(f"  without it (entry point hidden)  {statistics.median(r[1][0] for r in runs):.3f} s")
    print(f"import of the entry point (certbot_nginx_webroot.plugin) on top of certbot: "
          f"{statistics.median(import_cost(python) for _ in range(args.repeat)) * 1000:.1f} ms")
    certbot = [os.path.join(os.path.dirname(python), "certbot")]
    acme = lab.AcmeCA().start()
    try:
        print("certbot start to first ACME request (renewal):")
        for kind in KINDS:
            scenario = Scenario(kind, acme, f"{kind}.example", certbot)
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
