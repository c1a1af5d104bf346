"""End to end (issue 20, G): real certbot with this plugin, pebble and nginx
on a hosting config whose server blocks carry quoted values, ifs and regex
locations, as panels write them.  certbot installs where nginx serves the
name and leaves every other block as it was; reading that same config as a
run does (load, look up one name, render) costs under 5 bytes of memory per
byte of config, counted by tracemalloc (5.6 when such bodies were built in
full, 3.6 kept as text).  certbot's peak RSS is printed beside it, not
asserted: it moves with the allocator and the interpreter (3.8 to 5.4 in
runs of the same code)."""
import os
import re
import sys
import tracemalloc

import pytest

import lab
from certbot_nginx_webroot import lookup
from certbot_nginx_webroot.config import Config

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(bool(lab.missing_tools()) and not os.environ.get("CI"),
                       reason=f"end-to-end tools missing: {lab.missing_tools()}"),
]

SITES = 20000
# certbot as lab.CERTBOT_COMMAND runs it, reporting its own peak RSS (KiB,
# this process only: not nginx -t, which certbot runs as a child).
PEAK_RSS_COMMAND = [sys.executable, "-c",
                    "import atexit, resource, sys\n"
                    "atexit.register(lambda: print('peak-rss-kib', resource.getrusage("
                    "resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr))\n"
                    "from certbot.main import main\nsys.exit(main())"]


def hosting_sites(count):
    """The server blocks of bench/parse_bench.py's panel-quoted config on the
    lab's port.  (Its per-site maps are left out: nginx takes a minute to
    build 20 000 of their variables.)"""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), "bench"))
    import parse_bench
    text = parse_bench.generate(count, shape="panel-quoted")
    body = text[text.index("\n    map "):text.rindex("}")]
    body = re.sub(r"\n    map [^\n]*\{.*?\n    \}", "", body, flags=re.S)
    assert body.count("server {") == count and '"a # b { c } ; d' in body
    return ("server_names_hash_bucket_size 512;\nserver_names_hash_max_size 65536;\n"
            + body.replace("listen 80;", "listen {http};"))


def peak_rss(proc):
    return int(re.search(r"peak-rss-kib (\d+)", proc.stderr).group(1)) * 1024


def test_a_hosting_config_with_quoted_values_costs_under_5_bytes_per_byte(acme, nginx):
    certbot = lab.Certbot(os.path.join(nginx.prefix, "certbot"), acme, nginx,
                          command=PEAK_RSS_COMMAND)
    args = ["-a", "nginx-webroot", "-i", "nginx-webroot", *certbot.plugin_args()]
    nginx.write("sites/one.conf", "server {\n    listen {http};\n    server_name one.example;\n"
                "    root \"{prefix}/www\";\n    add_header X \"a # b { c }\";\n}\n")
    nginx.start()
    baseline = peak_rss(certbot.run("certonly", *args, "-d", "one.example"))

    nginx.stop(remove=False)
    path = nginx.write("sites/hosting.conf", hosting_sites(SITES))
    size = os.path.getsize(path)
    nginx.start()
    name = f"site{SITES * 3 // 4}.example"
    before = nginx.snapshot()
    peak = peak_rss(certbot.run(*args, "-d", name))
    # Installed where nginx serves the name, every other block untouched.
    assert lab.served_cert_der(name) == lab.leaf_der(certbot.live(name))
    after = nginx.snapshot()
    assert after[path] != before[path]
    assert [p for p in after if after[p] != before[p]] == [path]
    rss_per_byte = (peak - baseline) / size
    per_byte = pipeline_bytes(nginx.conf, name) / size
    print(f"{size / 2**20:.1f} MiB of config: the run's pipeline {per_byte:.2f} bytes per "
          f"byte; certbot's peak RSS {peak / 2**20:.0f} MiB, {baseline / 2**20:.0f} MiB for "
          f"one site: {rss_per_byte:.2f} bytes per byte")
    assert per_byte < 5


def pipeline_bytes(main, name):
    """The peak of what a run's reading of the config allocates: load every
    file, find the block that answers name, render the files back."""
    tracemalloc.start()
    try:
        config = Config.load(main)
        assert lookup.answering(config.servers(), name, lab.HTTP_PORT, use_default=False)
        for path in list(config.files):
            config.render(path)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
