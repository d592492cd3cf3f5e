"""``deb-bootc-compose publish``: signed OSTree updates as a static repository any web server serves.

* :mod:`.keys` -- the OpenPGP keys (a secret key file imported into a private GnuPG home, or a key in a
  GnuPG home), checked before anything is written;
* :mod:`.history` -- what was published per ref (newest first) and the keep policy;
* :mod:`.repo` -- the ostree operations on the archive-mode repository;
* :mod:`.run` -- the order that keeps the repository valid for clients when a publish is interrupted.
"""

from .history import History
from .keys import KeySpec, Signer
from .run import DEFAULT_KEEP, HISTORY_FILE, SUMMARY_HISTORY_KEY, PublishResult, publish

__all__ = ["DEFAULT_KEEP", "HISTORY_FILE", "SUMMARY_HISTORY_KEY", "History", "KeySpec", "PublishResult", "Signer",
           "publish"]
