"""One nginx reload for a whole ``certbot renew`` run.

certbot renews the due lineages one after another and calls the installer's
``restart()`` after each, on a new installer object every time.  A host with
hundreds of lineages would reload nginx hundreds of times in minutes, and
every reload starts new workers while the old ones drain their connections.
So during ``certbot renew`` the plugin only records what each renewed
lineage must serve, and reloads once:

- when certbot hands it the last lineage of the run (``generic_updates``,
  which certbot calls for every lineage after renewing it, before the
  post-hooks); a failure then is a renewal failure certbot reports and exits
  non-zero for;
- else, if the run ended another way (the last lineage belonged to another
  installer, or failed), when the process exits.

This module holds that run-wide state; it knows nothing of certbot.
"""
import glob
import os
from typing import Callable, Dict, List, Optional, Tuple

# Per nginx (binary, main configuration): the lineages waiting for a reload,
# what each name must then serve, and who reloads that nginx.
Key = Tuple[str, str]


Expected = Dict[str, List[str]]  # fullchain -> the names it must be served for


class Pending:
    def __init__(self, flush: Callable[[List[str], Expected], None]) -> None:
        self.flush = flush
        self.lineages: List[str] = []
        self.expected: Expected = {}


_pending: Dict[Key, Pending] = {}


def defer(key: Key, lineage: str, expected: Expected,
          flush: Callable[[List[str], Expected], None]) -> bool:
    """Record that lineage waits for a reload of the nginx key; flush(lineages,
    expected) will reload it.  True for the first lineage of this run."""
    first = not _pending
    entry = _pending.setdefault(key, Pending(flush))
    if lineage not in entry.lineages:
        entry.lineages.append(lineage)
    entry.expected.update(expected)
    return first


def waiting() -> List[str]:
    return [lineage for entry in _pending.values() for lineage in entry.lineages]


def flush_all() -> None:
    """Reload every nginx that lineages wait for, each once.  Each entry is
    taken before its flush runs, so a failure is reported once and not
    retried at exit; the first failure is raised after the others ran."""
    failure: Optional[BaseException] = None
    while _pending:
        key = next(iter(_pending))
        entry = _pending.pop(key)
        try:
            entry.flush(entry.lineages, entry.expected)
        except Exception as err:  # noqa: BLE001 - raised below, after the others
            failure = failure or err
    if failure is not None:
        raise failure


def last_lineage(renewal_configs_dir: str, certname: Optional[str]) -> Optional[str]:
    """The lineage certbot renew handles last: the one --cert-name names, else
    the last renewal configuration in sorted order (certbot reads
    ``renewal/*.conf`` sorted by name)."""
    if certname:
        return certname
    files = sorted(glob.glob(os.path.join(renewal_configs_dir, "*.conf")))
    return os.path.basename(files[-1])[:-len(".conf")] if files else None


def reset() -> None:
    """Forget everything (tests)."""
    _pending.clear()
