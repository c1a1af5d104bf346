"""End to end: an RSA and an ECDSA certificate side by side in one server
block, as two lineages (real certbot, pebble and nginx, as in test_e2e.py).

nginx picks per client: a default handshake gets the ECDSA certificate, a
TLS 1.2 client offering only RSA ciphers the RSA one.  Each lineage renews
with one reload and no edit while fresh connections of both kinds keep
getting a certificate of their kind.
"""
import os
import threading
import time

import pytest

import lab
from certbot_nginx_webroot import probes

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(bool(lab.missing_tools()) and not os.environ.get("CI"),
                       reason=f"end-to-end tools missing: {lab.missing_tools()}"),
]

NAME = "dual.example"
SITE = """\
server {
    listen {http};
    server_name dual.example;
    location / { proxy_pass http://127.0.0.1:{backend}; }
}
"""


def served(key_type=None):
    """The certificate a fresh client gets: by default (None), or offering
    only TLS 1.2 ciphers of key_type."""
    return probes.served_certificate(NAME, "*", lab.HTTPS_PORT, key_type=key_type)


class Probe(threading.Thread):
    """Fresh TLS connections back to back, default and RSA-only in turn:
    what each kind of client was served, or why it failed."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop_event = threading.Event()
        self.seen = {None: [], "rsa": []}

    def run(self) -> None:
        while not self.stop_event.is_set():
            for kind in self.seen:
                try:
                    self.seen[kind].append(served(kind))
                except Exception as err:  # noqa: BLE001 - every failure is recorded
                    self.seen[kind].append(repr(err))

    def __enter__(self) -> "Probe":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop_event.set()
        self.join(10)


def certificate_lines(nginx):
    text = open(os.path.join(nginx.prefix, "sites", "site.conf")).read()
    return [line.strip() for line in text.splitlines()
            if line.strip().startswith(("ssl_certificate ", "ssl_certificate_key "))]


def test_rsa_and_ecdsa_lineages_side_by_side(acme, nginx):
    nginx.write("sites/site.conf", SITE)
    nginx.start()
    certbot = lab.Certbot(os.path.join(nginx.prefix, "certbot"), acme, nginx)
    common = ["-a", "nginx-webroot", "-i", "nginx-webroot", *certbot.plugin_args(),
              "-d", NAME, "--no-redirect"]
    certbot.run(*common, "--key-type", "ecdsa", "--cert-name", "dual-ecdsa")
    ecdsa = lab.leaf_der(certbot.live("dual-ecdsa"))
    assert served() == ecdsa

    # The RSA lineage goes in beside the ECDSA one; nothing else changes.
    certbot.run(*common, "--key-type", "rsa", "--cert-name", "dual-rsa")
    rsa = lab.leaf_der(certbot.live("dual-rsa"))
    assert certificate_lines(nginx) == [
        f"ssl_certificate {certbot.live('dual-ecdsa')};  # certbot-nginx-webroot",
        f"ssl_certificate_key {certbot.live('dual-ecdsa', 'privkey.pem')};  "
        "# certbot-nginx-webroot",
        f"ssl_certificate {certbot.live('dual-rsa')};  # certbot-nginx-webroot",
        f"ssl_certificate_key {certbot.live('dual-rsa', 'privkey.pem')};  "
        "# certbot-nginx-webroot"]
    assert served() == ecdsa and served("rsa") == rsa

    # Installing either again replaces only its own pair: nothing changes.
    before = nginx.snapshot()
    for lineage in ("dual-ecdsa", "dual-rsa"):
        certbot.run("install", "--cert-name", lineage, "-i", "nginx-webroot",
                    *certbot.installer_args(), "--no-redirect")
    assert nginx.snapshot() == before

    current = {"dual-ecdsa": ecdsa, "dual-rsa": rsa}
    for lineage, kind in (("dual-rsa", "rsa"), ("dual-ecdsa", None)):
        before, reloads = nginx.snapshot(), nginx.reloads()
        with Probe() as probe:
            start = time.monotonic()
            certbot.run("renew", "--cert-name", lineage, "--force-renewal",
                        "--no-random-sleep-on-renew")
            wall = time.monotonic() - start
            renewed = lab.leaf_der(certbot.live(lineage))
            # Live when certbot exited, for its kind of client; the other kept.
            other = "dual-ecdsa" if lineage == "dual-rsa" else "dual-rsa"
            assert served(kind) == renewed
            assert served(None if kind else "rsa") == current[other]
            time.sleep(0.2)  # the probe sees the new one too
        assert nginx.reloads() - reloads == 1
        assert nginx.snapshot() == before
        assert renewed != current[lineage]
        # Every fresh client got a certificate of its kind, old or new.
        for probe_kind, certs in probe.seen.items():
            kind_lineage = "dual-rsa" if probe_kind == "rsa" else "dual-ecdsa"
            allowed = {current[kind_lineage], renewed if kind_lineage == lineage else None}
            assert len(certs) > 20, probe_kind
            assert [c for c in certs if c not in allowed] == [], probe_kind
        print(f"\nrenew {lineage}: {nginx.reloads() - reloads} reload, 0 files, "
              f"{wall:.2f} s; handshakes default {len(probe.seen[None])}, "
              f"RSA-only {len(probe.seen['rsa'])}, failed 0")
        current[lineage] = renewed

    # Both due in one run: one reload for the two, each served to its kind.
    before, reloads = nginx.snapshot(), nginx.reloads()
    with Probe() as probe:
        start = time.monotonic()
        certbot.run("renew", "--force-renewal", "--no-random-sleep-on-renew")
        wall = time.monotonic() - start
        assert served() == lab.leaf_der(certbot.live("dual-ecdsa")) != current["dual-ecdsa"]
        assert served("rsa") == lab.leaf_der(certbot.live("dual-rsa")) != current["dual-rsa"]
    assert nginx.reloads() - reloads == 1
    assert nginx.snapshot() == before
    failed = [c for certs in probe.seen.values() for c in certs if not isinstance(c, bytes)]
    assert failed == []
    print(f"renew both: {nginx.reloads() - reloads} reload, 0 files, {wall:.2f} s; "
          f"handshakes default {len(probe.seen[None])}, RSA-only {len(probe.seen['rsa'])}, "
          "failed 0")
