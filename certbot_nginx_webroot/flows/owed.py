"""The reloads a renewal run owes, kept on disk.

A run killed between saving a certificate and its reload (systemctl stop
past its timeout, the OOM killer, a reboot) would leave nginx serving the
previous certificates until some unrelated reload, since the next run finds
nothing due.  So the reload a run owes is kept in STATE_NAME in certbot's
work directory from before certbot saves a certificate until the reload is
done and every certificate it was for is served; the next run honours what
an earlier one left.  Entries are keyed by the controller's identity.
"""
import copy
import json
import logging
import os
import tempfile
from typing import Any, Dict, List, Optional, Tuple

logger = logging.getLogger(__name__)

STATE_NAME = "nginx-webroot-pending-reloads.json"
STATE_FORMAT = 1

Identity = Tuple[str, ...]
Expected = Dict[str, List[str]]  # fullchain -> the names it must be served for
# A lineage whose new certificate an nginx must be reloaded for and then
# serve: {"names": sorted names, "fullchain": its live fullchain, or None
# while certbot has not saved it yet (the names identify the lineage then)}.
Owed = Dict[str, Any]
State = Dict[Identity, List[Owed]]

_on_disk: Dict[str, State] = {}    # per state file: as this process last wrote it
_inherited: Dict[str, State] = {}  # per state file: what earlier runs left in it


def state_path(run: Any) -> str:
    return os.path.join(run.options.work_dir, STATE_NAME)


def owed(names: List[str], fullchain: Optional[str] = None) -> Owed:
    return {"names": sorted(set(names)), "fullchain": fullchain}


def _matches(item: Owed, fullchain: str, names: List[str]) -> bool:
    """Whether item is owed for the lineage fullchain (with names)."""
    if item["fullchain"] is not None:
        return item["fullchain"] == fullchain
    return item["names"] == sorted(set(names))


def _entry_identity(entry: Dict[str, Any]) -> Identity:
    """A local nginx is stored as {"ctl", "conf"} (as the first version
    wrote it); another controller as {"controller": its identity}."""
    if "controller" in entry:
        return tuple(str(part) for part in entry["controller"])
    return ("local", entry["ctl"], entry["conf"])


def _identity_entry(identity: Identity) -> Dict[str, Any]:
    if len(identity) == 3 and identity[0] == "local":
        return {"ctl": identity[1], "conf": identity[2]}
    return {"controller": list(identity)}


def _read(path: str) -> State:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if data.get("format") != STATE_FORMAT:
            raise ValueError(f"format {data.get('format')!r}")
        return {_entry_identity(entry): [owed(item["names"], item["fullchain"])
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
    entries = [dict(_identity_entry(identity), lineages=items)
               for identity, items in sorted(state.items()) if items]
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


def remember_at(path: str, identity: Identity, names: List[str],
                fullchain: Optional[str] = None) -> None:
    """Keep in path that nginx identity owes a reload for the lineage with
    names (fullchain once certbot has saved it: it takes the place of the
    entry that had only the names)."""
    items = _state(path).setdefault(tuple(identity), [])
    wanted = owed(names, fullchain)
    if wanted in items:
        return
    unsaved = owed(names)
    if fullchain is not None and unsaved in items:
        items[items.index(unsaved)] = wanted
    else:
        items.append(wanted)
    _write(path, _on_disk[path])


def left_at(path: str, identity: Identity, fullchain: str, names: List[str]) -> bool:
    """Whether a run before this process left nginx identity owing a reload
    for the lineage fullchain (with names)."""
    _state(path)
    return any(_matches(item, fullchain, names)
               for item in _inherited[path].get(tuple(identity), []))


def forget_at(path: str, identity: Identity, served: Expected) -> None:
    """Drop what nginx identity owed for the lineages served (fullchain ->
    names), now that it serves them."""
    state = _state(path)
    identity = tuple(identity)
    changed = False
    for kept in (state, _inherited[path]):
        items = kept.get(identity, [])
        remaining = [item for item in items
                     if not any(_matches(item, fullchain, names)
                                for fullchain, names in served.items())]
        if len(remaining) != len(items):
            kept[identity] = remaining
            changed = changed or kept is state
    if changed:
        _write(path, state)


def forget(run: Any, served: Expected) -> None:
    """forget_at for run's nginx; a file that cannot be updated is only
    warned about (the next run finds them served, and forgets them then)."""
    try:
        forget_at(state_path(run), run.controller.identity, served)
    except OSError as err:
        logger.warning("Cannot update %s: %s", state_path(run), err)


def reset() -> None:
    """Forget what this process read and wrote (a new process, in tests)."""
    _on_disk.clear()
    _inherited.clear()
