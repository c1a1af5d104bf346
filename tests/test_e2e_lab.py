"""End to end: the lab itself on Debian 13.  Python 3.13 (and urllib3 2 on
it) verify every certificate strictly (VERIFY_X509_STRICT), so certbot there
refused the lab's CA ("CA cert does not include key usage extension") and
every end-to-end test, the demo and the benchmarks failed.  Here real certbot
runs with the same strict verification on whatever Python runs the tests."""
import os
import sys

import pytest

import lab

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(bool(lab.missing_tools()) and not os.environ.get("CI"),
                       reason=f"end-to-end tools missing: {lab.missing_tools()}"),
]

# certbot, with every verifying TLS context made strict as Python 3.13 makes
# them (ssl.create_default_context, urllib3's contexts): the flag is added
# just before each handshake, so no way of building a context escapes it.
STRICT_CERTBOT = [sys.executable, "-c", """\
import ssl, sys
wrap_socket = ssl.SSLContext.wrap_socket
def strict_wrap_socket(self, *args, **kwargs):
    if self.verify_mode != ssl.CERT_NONE:
        self.verify_flags |= ssl.VERIFY_X509_STRICT
    return wrap_socket(self, *args, **kwargs)
ssl.SSLContext.wrap_socket = strict_wrap_socket
from certbot.main import main
sys.exit(main())
"""]


def test_certbot_with_strict_verification_issues_installs_and_renews(acme, nginx):
    nginx.write("sites/site.conf", """\
server {
    listen {http};
    server_name strict.example;
    location / { proxy_pass http://127.0.0.1:{backend}; }
}
""")
    nginx.start()
    certbot = lab.Certbot(os.path.join(nginx.prefix, "certbot"), acme, nginx,
                          command=STRICT_CERTBOT)
    certbot.run("-a", "nginx-webroot", "-i", "nginx-webroot", *certbot.plugin_args(),
                "-d", "strict.example", "--no-redirect")
    issued = lab.leaf_der(certbot.live("strict.example"))
    assert lab.served_cert_der("strict.example") == issued
    certbot.run("renew", "--force-renewal", "--no-random-sleep-on-renew")
    renewed = lab.leaf_der(certbot.live("strict.example"))
    assert renewed != issued
    assert lab.served_cert_der("strict.example") == renewed
