"""An edit of nginx's configuration, all or nothing.

The order is the point: ``nginx -t`` on the configuration as found (one
that already fails is not ours to edit), refuse files changed on disk
since they were read, record them in a checkpoint, write atomically,
``nginx -t`` again, and on any failure put every file back from the
checkpoint.  Checkpoints are certbot's Reverter, reached through the
``checkpoints`` object the edge hands in (add, register_creation,
finalize, recover, revert_temporary), so certbot's rollback and recovery
after a crash undo these edits too.

An edit the authenticator makes for the challenge location stays pending
until nginx is seen serving the challenge files: finish keeps it, undo
puts the files back and has nginx serve them again.  A dry run's edit is
temporary (certbot's temporary checkpoint) and undone in cleanup.
"""
import os
from typing import Any, Optional

from certbot_nginx_webroot import config as nginx_config
from certbot_nginx_webroot.controllers import NginxError
from certbot_nginx_webroot.problems import Problem


class EditTransaction:
    """This run's edits: the first-edit test, the checkpoint of each save,
    and the one pending edit."""

    def __init__(self, run: Any, checkpoints: Any, reload: Any) -> None:
        self.run = run
        self.checkpoints = checkpoints
        self.reload = reload  # golive's reload: nginx serves what is on disk
        self._tested_before_edit = False  # nginx -t passed on the unedited config
        self.pending: Optional[str] = None  # checkpoint title, kept until served
        self.temporary = False  # the pending edit is a dry run's, undone in cleanup

    def save(self, config: nginx_config.Config, notes: str, finalize: bool,
             temporary: bool = False) -> None:
        """Write config's changed files as one checkpoint, then nginx -t;
        every file is put back if either fails."""
        self.test_before_first_edit()
        try:
            config.check_unchanged()
        except nginx_config.ConfigError as err:
            self.run.forget_config()
            raise Problem(f"{err}; nothing was written, rerun") from err
        new = [p for p in config.changed if not os.path.exists(p)]
        old = {os.path.realpath(p) for p in config.changed if os.path.exists(p)}
        if new:
            self.checkpoints.register_creation(temporary, *new)
        if old:
            self.checkpoints.add(old, notes, temporary)
        try:
            config.save()
        except (OSError, nginx_config.ConfigError) as err:
            self._restore()
            raise Problem(f"cannot write the nginx configuration: {err}; "
                          "the configuration was restored") from err
        try:
            self.run.controller.test()
        except NginxError as err:
            self._restore()
            raise Problem(f"{err}; the configuration was restored") from err
        if finalize:
            self.checkpoints.finalize(notes)

    def _restore(self) -> None:
        self.run.forget_config()
        self.checkpoints.recover()

    def test_before_first_edit(self) -> None:
        """nginx -t on the configuration as found, before the run's first
        write: a configuration that already fails is not the plugin's to
        edit, and must be left exactly as it is."""
        if self._tested_before_edit:
            return
        try:
            self.run.controller.test()
        except NginxError as err:
            self.run.forget_config()
            raise Problem(
                f"the nginx configuration already fails before any change ({err}); "
                "nothing was changed; fix it, then rerun") from err
        self._tested_before_edit = True

    # -- the pending edit ---------------------------------------------------

    def begin_pending(self, config: nginx_config.Config, title: str,
                      temporary: bool) -> None:
        """Save config as an edit kept only once proven (finish), and reload."""
        self.save(config, title, finalize=False, temporary=temporary)
        self.pending = title
        self.temporary = temporary
        self.reload()

    def finish_pending(self) -> None:
        if self.pending is not None and not self.temporary:
            self.checkpoints.finalize(self.pending)
            self.pending = None

    def undo_pending(self) -> None:
        """A refusal leaves no edit behind: restore the files the challenge
        location went into and have nginx serve them again."""
        if self.pending is None:
            return
        self.pending = None
        self.temporary = False
        self.checkpoints.recover()
        self.run.forget_config()  # the files are as they were; the edited tree is not
        self.reload()

    def revert_temporary(self) -> None:
        """A dry run's challenge location, served for this run's challenges,
        is undone once they are over: the files as they were (certbot's
        temporary checkpoint), and nginx reloaded to serve them again."""
        if self.pending is None or not self.temporary:
            return
        self.pending = None
        self.temporary = False
        try:
            self.checkpoints.revert_temporary(
                "cannot undo this dry run's challenge location")
        finally:
            self.run.forget_config()  # the files are as they were; the edited tree is not
        self.reload()
