"""Enhancements: what certbot's --redirect, --hsts, --uir and
--staple-ocsp ask of the installer, one function each, chosen by name from
ENHANCEMENTS (add an enhancement here: one function and one entry).

Each edits the configuration in memory (certbot saves it); one that finds
the enhancement there already raises AlreadyPresent, which certbot reports
as nothing to do.
"""
import logging
from typing import Any, Callable, Dict, Optional

from certbot_nginx_webroot import redirects, sites, tls
from certbot_nginx_webroot.problems import AlreadyPresent, Problem

logger = logging.getLogger(__name__)


def redirect(run: Any, domain: str, options: Optional[Any]) -> None:
    """HTTP to HTTPS for domain, in every block that answers it on the HTTP
    port (a catch-all that answers the name counts: its redirect is the name's)."""
    http_port = run.options.http_port
    with run.editing() as config:
        matches = sites.answering(config, domain, http_port)
        if not matches:
            raise sites.SiteError(f"no server block for {domain} on port {http_port}")
        added = [redirects.add_redirect(config, m, run.options.https_port, domain)
                 for m in matches]
    if not any(added):
        raise AlreadyPresent(f"{domain} already redirects to HTTPS")


def ensure_http_header(run: Any, domain: str, header: Optional[Any]) -> None:
    """A response header (Strict-Transport-Security, Content-Security-Policy
    upgrade-insecure-requests) in every HTTPS block that answers domain."""
    with run.editing() as config:
        servers = tls.https_servers(config, domain, run.options.https_port)
        if not servers:
            raise sites.SiteError(f"no HTTPS server block answers {domain}; install a "
                                  "certificate for it first")
        results = [tls.ensure_header(config, server, header) for server in servers]
    for _, skipped in results:
        for line in skipped:
            logger.warning("%s", line)
    if not any(added for added, _ in results):
        raise AlreadyPresent(f"{domain} already sends {header}")


def refuse_stapling(run: Any, domain: str, options: Optional[Any]) -> None:
    """Listed so that --staple-ocsp gets a reason, not a silent skip: Let's
    Encrypt ended OCSP in 2025."""
    raise Problem(tls.NO_STAPLING)


ENHANCEMENTS: Dict[str, Callable[[Any, str, Optional[Any]], None]] = {
    "redirect": redirect,
    "ensure-http-header": ensure_http_header,
    "staple-ocsp": refuse_stapling,
}


def enhance(run: Any, domain: str, enhancement: str, options: Optional[Any] = None) -> None:
    try:
        apply = ENHANCEMENTS[enhancement]
    except KeyError:
        raise Problem(f"unsupported enhancement: {enhancement}") from None
    apply(run, domain, options)
