"""One nginx reload for a whole ``certbot renew`` run.

certbot renews the due lineages one after another and calls the installer's
``restart()`` after each, on a new installer object every time.  A host with
hundreds of lineages would reload nginx hundreds of times in minutes, and
every reload starts new workers while the old ones drain their connections.
So during ``certbot renew`` the plugin only records, per nginx (the
controller's identity), what each renewed lineage must serve, and reloads
each nginx once, when the edge says the run's last lineage is done or the
process exits (see plugin.py).  A reload a run owes is also kept on disk
until it is done (owed.py).
"""
import logging
from typing import Any, Callable, Dict, List, Optional, Tuple

from certbot_nginx_webroot.controllers import NginxError
from certbot_nginx_webroot.flows import owed
from certbot_nginx_webroot.flows.golive import GoLive
from certbot_nginx_webroot.problems import Problem

logger = logging.getLogger(__name__)

Expected = Dict[str, List[str]]  # fullchain -> the names it must be served for


class Waiting:
    """What one nginx must serve once reloaded: the renewed lineages and,
    per certificate, the names; run is that nginx's Run (controller,
    options, probes)."""

    def __init__(self, run: Any) -> None:
        self.run = run
        self.lineages: List[str] = []
        self.expected: Expected = {}


class RenewalBatch:
    """The lineages of this run waiting for their nginx's reload, keyed by
    the controller's identity; go_live(run, lineages, expected) reloads one
    nginx and proves it serves them."""

    def __init__(self, go_live: Callable[[Any, List[str], Expected], None]) -> None:
        self.go_live = go_live
        self._waiting: Dict[Tuple[str, ...], Waiting] = {}

    def add(self, run: Any, lineage: str, expected: Expected) -> bool:
        """Record that lineage waits for a reload of run's nginx.  True for
        the first lineage of this run (the caller arranges the flush)."""
        first = not self._waiting
        entry = self._waiting.setdefault(tuple(run.controller.identity), Waiting(run))
        if lineage not in entry.lineages:
            entry.lineages.append(lineage)
        entry.expected.update(expected)
        return first

    def lineages(self) -> List[str]:
        return [lineage for entry in self._waiting.values() for lineage in entry.lineages]

    def flush_all(self) -> None:
        """Reload every nginx that lineages wait for, each once.  Each entry is
        taken before its reload, so a failure is reported once and not
        retried at exit; the first failure is raised after the others ran."""
        failure: Optional[BaseException] = None
        while self._waiting:
            entry = self._waiting.pop(next(iter(self._waiting)))
            try:
                self.go_live(entry.run, entry.lineages, entry.expected)
            except Exception as err:  # noqa: BLE001 - raised below, after the others
                failure = failure or err
        if failure is not None:
            raise failure

    def clear(self) -> None:
        self._waiting.clear()


def reload_once(run: Any, lineages: List[str], expected: Expected) -> None:
    """The batched reload of one nginx: nginx -t, one reload, then every
    renewed certificate served (per name, with SNI); the reload is then no
    longer owed."""
    run.forget_config()  # later lineages may have edited the configuration
    golive = GoLive(run)
    golive.expected.update(expected)
    reloaded = False
    try:
        run.deliver(expected)
        run.controller.test()
        golive.reload()
        reloaded = True
        golive.wait_certificates_live()
        logger.info("Reloaded nginx once for %d renewed lineage(s): %s", len(lineages),
                    ", ".join(lineages))
    except (Problem, NginxError) as err:
        then = ("nginx was reloaded; fix what it serves and reload it" if reloaded else
                "nginx keeps serving the previous ones until the problem is fixed and "
                "it is reloaded")
        raise Problem(
            f"renewed {len(lineages)} certificate(s) ({', '.join(lineages)}) but nginx"
            f"{run.where} does not serve them: {err}; {then}") from err
    owed.forget(run, expected)  # served: the reload is no longer owed


# This process's run (certbot renew is one process; certbot makes a new
# plugin object per lineage, so the batch cannot live in one of them).
BATCH = RenewalBatch(reload_once)
