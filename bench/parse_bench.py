#!/usr/bin/env python3
"""Parse, lookup and dump of generated configs of N server blocks (10 000 and
100 000 by default), side by side with certbot's own nginx parser
(pyparsing) in the same run where it finishes in reasonable time; then both
parsers over the real-world corpus in ../shared/corpus.

    python3 bench/parse_bench.py [--servers 10000,100000] [--repeat R]
                                 [--certbot-max N] [--distinct]
                                 [--shape plain|panel-quoted]

--shape panel-quoted writes each site as panels do beside plain directives:
a map at http level, an if with a quoted redirect, regex locations, quoted
values holding "#", braces, ";", "${", escaped quotes and a newline.

Each size runs in a process of its own, so that what one measurement leaves
in the heap does not slow the next (at 100 000 blocks, right after certbot's
parser had run at 10 000 in the same process, every step took 1.5x as
long).  Times are the best of R runs (wall clock, time.perf_counter; with
--clock cpu, the process's CPU time, time.process_time).  Memory is
measured with tracemalloc in separate runs (it slows what it watches): the
peak during one parse of the text (the tree and everything the parse
allocates; the text itself was allocated before), and the peak of the whole
pipeline a certbot run goes through (read and parse the file, look the name
up, dump the file), in bytes per byte of config.  Prints numbers, asserts
only that the lookup found the one block and that the dump is byte-exact.
"""
import argparse
import importlib
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from certbot_nginx_webroot import lookup, parser  # noqa: E402
from certbot_nginx_webroot.config import Config  # noqa: E402

CORPUS = os.path.join(HERE, "..", "..", "shared", "corpus")


def certbot_modules():
    for prefix in ("certbot._internal.plugins.nginx", "certbot_nginx._internal"):
        try:
            return (importlib.import_module(prefix + ".nginxparser"),
                    importlib.import_module(prefix + ".parser"))
        except ImportError:
            continue
    return None, None


def generate(n: int, distinct: bool = False, shape: str = "plain") -> str:
    """n server blocks as a hosting panel writes them.  distinct: no two
    lines alike (each carries its site's number), the worst case for a
    parser that stores a repeated line once.  shape "panel-quoted": the
    constructs panels write beside plain directives (see generate_quoted)."""
    if shape == "panel-quoted":
        return generate_quoted(n, distinct)
    blocks = ["events {}\nhttp {\n"]
    for i in range(n):
        s = i if distinct else ""
        blocks.append(f"""\
    # site {i}
    server {{
        listen {f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}:" if distinct else ""}80;
        listen [::]:80;
        server_name site{i}.example www.site{i}.example;
        root /var/www/site{i};

        location /{s} {{
            try_files $uri @app{s};
        }}
        location @app{s} {{
            proxy_pass http://127.0.0.1:{8000 + i % 1000}{f"/{i}" if distinct else ""};
            proxy_set_header Host{s} $host;
        }}
    }}
""")
    blocks.append("}\n")
    return "".join(blocks)


def generate_quoted(n: int, distinct: bool = False) -> str:
    """Per site: a map at http level (quoted and regex keys), an HTTPS
    redirect in an if, regex locations, quoted values holding "#", braces,
    ";", "$" and "${", escaped quotes, single and double quotes, a value
    quoted across lines, a word with a quote inside it."""
    blocks = ["events {}\nhttp {\n"
              "    log_format panel '$remote_addr - [$time_local] \"$request\" $status';\n"]
    for i in range(n):
        s = i if distinct else ""
        blocks.append(f"""\
    map $http_user_agent $bot{i} {{
        default 0;
        "~*(google|bing)bot{s}" 1;
        '~*curl/' 2;
    }}
    server {{
        listen 80;
        server_name site{i}.example www.site{i}.example;
        root "/var/www/site{i}";
        if ($host = "www.site{i}.example") {{
            return 301 "https://site{i}.example$request_uri";
        }}
        location ~* \\.(js|css|png|svg)$ {{
            expires 30d;
            add_header X-Panel "a # b {{ c }} ; d{s}";
        }}
        location = /robots.txt {{
            return 200 'User-agent: *\\nDisallow: /a;{s}\n';
        }}
        location / {{
            proxy_set_header X-Host "${{host}} say \\"hi\\" it\\'s";
            proxy_pass http://127.0.0.1:{8000 + i % 1000};
        }}
        set $a_b a"b"{s};
    }}
""")
    blocks.append("}\n")
    return "".join(blocks)


CLOCK = time.perf_counter  # --clock cpu: time.process_time


def best(fn, repeat):
    times = []
    result = None
    for _ in range(repeat):
        start = CLOCK()
        result = fn()
        times.append(CLOCK() - start)
    return min(times), result


def peak_mib(fn):
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def ours(text, conf_dir, target, repeat):
    main = os.path.join(conf_dir, "nginx.conf")
    t_parse, conf = best(lambda: parser.parse(text, main), repeat)
    config = Config.load(main)

    def find():
        config._servers = None  # measure reading every block's names too, not a cached list
        return lookup.answering(config.servers(), target, 80, use_default=False)
    t_lookup, found = best(find, repeat)
    assert [m.server.names[0] for m in found] == [target]
    t_dump, out = best(lambda: parser.dump(conf), repeat)
    assert out == text
    del conf, config, found, out
    mem = peak_mib(lambda: parser.parse(text, main))

    def pipeline():
        loaded = Config.load(main)
        assert lookup.answering(loaded.servers(), target, 80, use_default=False)
        assert loaded.render(main) == text.encode()
    return t_parse, t_lookup, t_dump, mem, peak_mib(pipeline)


def theirs(text, conf_dir, target, repeat):
    nginxparser, nginx_parser = certbot_modules()
    t_parse, tree = best(lambda: nginxparser.loads(text), max(1, repeat // 3))
    loaded = nginx_parser.NginxParser(conf_dir)

    def find():
        matches = []
        for vhost in loaded.get_vhosts():
            if any(addr.get_port() == "80" for addr in vhost.addrs):
                kind, name = nginx_parser.get_best_match(target, vhost.names)
                if kind == "exact":
                    matches.append(vhost)
        return matches
    t_lookup, found = best(find, max(1, repeat // 3))
    assert len(found) == 1
    t_dump, _ = best(lambda: nginxparser.dumps(tree), max(1, repeat // 3))
    del tree, loaded
    mem = peak_mib(lambda: nginxparser.loads(text))
    return t_parse, t_lookup, t_dump, mem, None


def corpus_report():
    nginxparser, _ = certbot_modules()
    files = []
    for d, _, names in os.walk(CORPUS):
        files += [os.path.join(d, n) for n in names if n != "SOURCES.md"]
    ours_fail = theirs_fail = theirs_mismatch = 0
    failed_names = []
    for path in sorted(files):
        with open(path, "rb") as f:
            data = f.read()
        try:
            parser.parse(parser.decode(data), path)
        except parser.ParseError:
            ours_fail += 1
        try:
            text = data.decode("utf-8")
            tree = nginxparser.loads(text)
            if nginxparser.dumps(tree) != text:
                theirs_mismatch += 1
        except Exception:  # noqa: BLE001 - any failure counts
            theirs_fail += 1
            failed_names.append(os.path.relpath(path, CORPUS))
    probe = 'http {\n    log_format x #c1\n        a # c2\n        b;\n}\n'
    their_args = nginxparser.loads(probe)[0][1][0]
    our_args = parser.parse(probe).children[0].children[0]
    return len(files), ours_fail, theirs_fail, theirs_mismatch, failed_names, \
        [our_args.name] + our_args.args, [a for a in their_args if a.strip()]


def one_size(servers, repeat, certbot_max, distinct, shape):
    text = generate(servers, distinct, shape)
    mib = len(text) / 2**20
    target = f"site{servers * 3 // 4}.example"
    print(f"\nconfig: {servers} server blocks{' (no two lines alike)' if distinct else ''}"
          f"{', shape ' + shape if shape != 'plain' else ''}, "
          f"{mib:.2f} MiB, {text.count(chr(10))} lines; "
          f"lookup of {target} on :80; best of {repeat} "
          f"(certbot: best of {max(1, repeat // 3)})")
    with tempfile.TemporaryDirectory() as conf_dir:
        with open(os.path.join(conf_dir, "nginx.conf"), "w") as f:
            f.write(text)
        rows = [("certbot-nginx-webroot", ours(text, conf_dir, target, repeat))]
        if certbot_modules()[0] is None:
            print("certbot's nginx parser: not installed (pip install certbot-nginx)")
        elif servers > certbot_max:
            print(f"certbot's nginx parser: not run above {certbot_max} blocks "
                  "(--certbot-max; it takes minutes per 10 000)")
        else:
            rows.append(("certbot nginx parser", theirs(text, conf_dir, target, repeat)))
    print(f"{'parser':<24}{'parse s':>9}{'lookup s':>10}{'dump s':>9}{'total s':>9}"
          f"{'parse MiB':>11}{'B/B':>6}{'pipeline B/B':>14}")
    for name, (p, lk, d, m, pipe) in rows:
        pipe_text = f"{pipe * 2**20 / len(text):>14.1f}" if pipe is not None else f"{'-':>14}"
        print(f"{name:<24}{p:>9.3f}{lk:>10.3f}{d:>9.3f}{p + lk + d:>9.3f}"
              f"{m:>11.1f}{m / mib:>6.1f}{pipe_text}")
    if len(rows) == 2:
        (_, a), (_, b) = rows
        print(f"{'certbot / ours':<24}{b[0] / a[0]:>8.1f}x{b[1] / a[1]:>9.1f}x"
              f"{b[2] / a[2]:>8.1f}x{(b[0] + b[1] + b[2]) / (a[0] + a[1] + a[2]):>8.1f}x"
              f"{b[3] / a[3]:>10.1f}x")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--servers", default="10000,100000",
                    help="comma-separated numbers of server blocks")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--certbot-max", type=int, default=10000,
                    help="run certbot's parser only up to this many blocks")
    ap.add_argument("--distinct", action="store_true",
                    help="no two lines alike (default: as a template makes them)")
    ap.add_argument("--shape", choices=("plain", "panel-quoted"), default="plain",
                    help="plain: plain directives only; panel-quoted: maps, ifs, regex "
                         "locations and quoted values with '#', braces and escapes")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall: time.perf_counter; cpu: time.process_time (this process's "
                         "CPU time, for a machine shared with other work)")
    ap.add_argument("--one-size", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.one_size:
        one_size(int(args.servers), args.repeat, args.certbot_max, args.distinct, args.shape)
        return
    print("targets (issue 13): parse + lookup + dump of 100 000 blocks under 3 s, "
          "under 5 bytes of memory per byte of config")
    for servers in args.servers.split(","):
        sys.stdout.flush()
        subprocess.run([sys.executable, os.path.abspath(__file__), "--one-size",
                        "--servers", servers, "--repeat", str(args.repeat),
                        "--certbot-max", str(args.certbot_max), "--shape", args.shape,
                        "--clock", args.clock]
                       + (["--distinct"] if args.distinct else []), check=True)
    if os.path.isdir(CORPUS) and certbot_modules()[0] is not None:
        n, ours_fail, theirs_fail, mismatch, names, our_args, their_args = corpus_report()
        print(f"\ncorpus: {n} files")
        print(f"  certbot-nginx-webroot: {ours_fail} rejected (the known-invalid files)")
        print(f"  certbot nginx parser:  {theirs_fail} failed, {mismatch} did not round-trip")
        for name in names:
            print(f"    failed: {name}")
        print(f"  comments between arguments: ours {our_args}, certbot {their_args}")


if __name__ == "__main__":
    main()
