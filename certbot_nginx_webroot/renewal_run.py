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

A run killed between saving a certificate and that reload (systemctl stop
past its timeout, the OOM killer, a reboot) would leave nginx serving the
previous certificates until some unrelated reload, since the next run finds
nothing due.  So the reload a run owes is also kept on disk (STATE_NAME in
certbot's work directory) from before certbot saves a certificate until the
reload is done and every certificate it was for is served; the next run
honours what an earlier one left.

This module holds that run-wide state; it knows nothing of certbot.
"""
import copy
import glob
import json
import logging
import os
import tempfile
from typing import Any, Callable, Dict, List, Optional, Tuple

logger = logging.getLogger(__name__)

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


# -- the reloads owed, on disk ---------------------------------------------

STATE_NAME = "nginx-webroot-pending-reloads.json"
STATE_FORMAT = 1

# A lineage whose new certificate an nginx must be reloaded for and then
# serve: {"names": sorted names, "fullchain": its live fullchain, or None
# while certbot has not saved it yet (the names identify the lineage then)}.
Owed = Dict[str, Any]
State = Dict[Key, List[Owed]]

_on_disk: Dict[str, State] = {}    # per state file: as this process last wrote it
_inherited: Dict[str, State] = {}  # per state file: what earlier runs left in it


def owed(names: List[str], fullchain: Optional[str] = None) -> Owed:
    return {"names": sorted(set(names)), "fullchain": fullchain}


def _matches(item: Owed, fullchain: str, names: List[str]) -> bool:
    """Whether item is owed for the lineage fullchain (with names)."""
    if item["fullchain"] is not None:
        return item["fullchain"] == fullchain
    return item["names"] == sorted(set(names))


def _read(path: str) -> State:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if data.get("format") != STATE_FORMAT:
            raise ValueError(f"format {data.get('format')!r}")
        return {(entry["ctl"], entry["conf"]): [owed(item["names"], item["fullchain"])
                                                for item in entry["lineages"]]
                for entry in data["reloads"]}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        # Written atomically, so only a hand edit gets here; the next write replaces it.
        logger.warning("Ignoring %s, which cannot be read (%s)", path, err)
        return {}


def _write(path: str, state: State) -> None:
    """state into path, atomically and durably (the point is to survive a
    crash or a reboot), readable by root only; no file when nothing is owed."""
    entries = [{"ctl": key[0], "conf": key[1], "lineages": items}
               for key, items in sorted(state.items()) if items]
    directory = os.path.dirname(path) or "."
    if not entries:
        try:
            os.unlink(path)
        except FileNotFoundError:
            return
    else:
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=".nginx-webroot-", suffix=".tmp")
        try:  # mkstemp makes it 0600
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"format": STATE_FORMAT, "reloads": entries}, f, indent=1)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, path)
        except BaseException:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _state(path: str) -> State:
    """The state in path, read once per process, before its first write."""
    if path not in _on_disk:
        _on_disk[path] = _read(path)
        _inherited[path] = copy.deepcopy(_on_disk[path])
    return _on_disk[path]


def remember(path: str, key: Key, names: List[str], fullchain: Optional[str] = None) -> None:
    """Keep in path that nginx key owes a reload for the lineage with names
    (fullchain once certbot has saved it: it takes the place of the entry
    that had only the names)."""
    items = _state(path).setdefault(key, [])
    wanted = owed(names, fullchain)
    if wanted in items:
        return
    unsaved = owed(names)
    if fullchain is not None and unsaved in items:
        items[items.index(unsaved)] = wanted
    else:
        items.append(wanted)
    _write(path, _on_disk[path])


def left_by_earlier_run(path: str, key: Key, fullchain: str, names: List[str]) -> bool:
    """Whether a run before this process left nginx key owing a reload for
    the lineage fullchain (with names)."""
    _state(path)
    return any(_matches(item, fullchain, names) for item in _inherited[path].get(key, []))


def forget(path: str, key: Key, served: Expected) -> None:
    """Drop what nginx key owed for the lineages served (fullchain -> names),
    now that it serves them."""
    state = _state(path)
    changed = False
    for kept in (state, _inherited[path]):
        items = kept.get(key, [])
        remaining = [item for item in items
                     if not any(_matches(item, fullchain, names)
                                for fullchain, names in served.items())]
        if len(remaining) != len(items):
            kept[key] = remaining
            changed = changed or kept is state
    if changed:
        _write(path, state)


def reset() -> None:
    """Forget everything (tests)."""
    _pending.clear()
    _on_disk.clear()
    _inherited.clear()
