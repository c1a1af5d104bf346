#!/usr/bin/env python3
"""The TLS an HTTPS block serves before and after this plugin installs a
certificate into it, per nginx binary and per http-level setting: which
protocol versions a handshake gets (openssl s_client at security level 0,
so only nginx refuses), and what a scanner (Debian's testssl.sh) flags.

    python3 bench/tls_scan.py [--nginx BINARY ...] [--no-scan]

Runs in the lab (real pebble, real nginx on loopback; run it inside
`unshare -n`).  The http level sets nginx's default cipher list at security
level 0, so this OpenSSL 3 nginx accepts TLS 1.0/1.1 as one built with
OpenSSL 1.1.1 does, plus Debian's `ssl_protocols TLSv1 TLSv1.1 TLSv1.2
TLSv1.3;` or, as nginx.org's nginx.conf, no ssl_protocols.  The block is
hand-made (a placeholder certificate) before; after, certbot has run
`-a nginx-webroot -i nginx-webroot --hsts --uir` for it and a second name
whose HTTPS block the plugin makes.  Prints tables; asserts nothing.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tests"))

import lab  # noqa: E402

HTTP_LEVEL = {
    "debian": "ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;",
    "nginx.org": "",
}
OLD_OPENSSL = "ssl_ciphers HIGH:!aNULL:!MD5:@SECLEVEL=0;"  # nginx's default list
SITE = """\
server {
    listen {http};
    server_name new.example;
    location / { proxy_pass http://127.0.0.1:{backend}; }
}

server {
    listen {https} ssl;
    server_name made.example;
    ssl_certificate {prefix}/snakeoil.pem;
    ssl_certificate_key {prefix}/snakeoil.key;
    location / { proxy_pass http://127.0.0.1:{backend}; }
}
"""
FLAGGED = ("LOW", "MEDIUM", "HIGH", "CRITICAL")


def scan(name):
    """testssl's protocols, cipher categories, forward secrecy and server
    preferences for name on the HTTPS port: (seconds, findings it rates LOW
    or worse as "id: finding")."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "scan.json")
        start = time.perf_counter()
        subprocess.run(["testssl", "--quiet", "--color", "0", "--warnings", "off",
                        "--ip", "127.0.0.1", "-p", "-s", "-f", "-P", "--jsonfile", out,
                        f"{name}:{lab.HTTPS_PORT}"], capture_output=True, timeout=600)
        with open(out) as f:
            findings = json.load(f)
    flagged = [f"{f['id']}: {f['finding']}" for f in findings if f.get("severity") in FLAGGED]
    return time.perf_counter() - start, flagged


def handshakes(name):
    return [lab.tls_handshake(name, p) for p in lab.TLS_PROTOCOLS]


def one(acme, binary, level, do_scan):
    os.environ["NGINX_BINARY"] = binary
    nginx = lab.NginxLab()
    try:
        with open(nginx.conf) as f:
            main = f.read()
        with open(nginx.conf, "w") as f:
            f.write(main.replace("    default_type text/plain;\n",
                                 f"    default_type text/plain;\n    {HTTP_LEVEL[level]}\n"
                                 f"    {OLD_OPENSSL}\n"))
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj",
                        "/CN=snakeoil", "-keyout", os.path.join(nginx.prefix, "snakeoil.key"),
                        "-out", os.path.join(nginx.prefix, "snakeoil.pem")],
                       check=True, capture_output=True)
        nginx.write("sites/site.conf", SITE)
        nginx.start()
        version = subprocess.run([binary, "-v"], capture_output=True, text=True).stderr.split(
            "/")[-1].strip()
        rows = [(version, level, "before", "made.example", handshakes("made.example"),
                 lab.negotiated_protocol("made.example"),
                 scan("made.example") if do_scan else None)]
        certbot = lab.Certbot(os.path.join(nginx.prefix, "certbot"), acme, nginx)
        certbot.run("-a", "nginx-webroot", "-i", "nginx-webroot", *certbot.plugin_args(),
                    "-d", "made.example", "-d", "new.example", "--no-redirect",
                    "--hsts", "--uir")
        for name in ("made.example", "new.example"):
            rows.append((version, level, "after", name, handshakes(name),
                         lab.negotiated_protocol(name), scan(name) if do_scan else None))
        return rows
    finally:
        nginx.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nginx", action="append",
                    help="nginx binary (repeatable); default: the installed one")
    ap.add_argument("--no-scan", action="store_true", help="handshakes only")
    args = ap.parse_args()
    do_scan = not args.no_scan and shutil.which("testssl") is not None
    acme = lab.AcmeCA().start()
    rows = []
    try:
        for binary in args.nginx or [lab.nginx_binary()]:
            for level in HTTP_LEVEL:
                rows += one(acme, binary, level, do_scan)
    finally:
        acme.stop()
    print(f"{'nginx':<8}{'http level':<11}{'when':<8}{'block':<14}"
          + "".join(f"{p:<10}" for p in ("TLS1.0", "TLS1.1", "TLS1.2", "TLS1.3", "ALPN"))
          + ("scan s  flagged" if do_scan else ""))
    for version, level, when, name, shakes, alpn, scanned in rows:
        line = f"{version:<8}{level:<11}{when:<8}{name:<14}" + "".join(
            f"{s:<10}" for s in shakes + [alpn])
        if scanned:
            line += f"{scanned[0]:6.0f}  {len(scanned[1])}"
        print(line)
    if do_scan:
        print("\ntestssl findings rated LOW or worse:")
        for version, level, when, name, _, _, scanned in rows:
            print(f"  nginx {version}, {level}, {when}, {name}: "
                  + ("none" if not scanned[1] else "; ".join(scanned[1])))


if __name__ == "__main__":
    main()
