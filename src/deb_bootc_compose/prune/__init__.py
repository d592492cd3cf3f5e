"""``deb-bootc-compose prune``: retention for a compose target directory (old composes, OSTree commits nothing
keeps, pool .debs no kept lockfile names).

* :mod:`.plan` -- which composes stay and why (pure);
* :mod:`.scan` -- reading the target (composes, ``latest-`` links, published commits, sizes);
* :mod:`.run` -- carrying the plan out so that a stopped prune leaves a usable target.
"""

from .plan import Policy
from .run import PruneReport, prune

__all__ = ["Policy", "PruneReport", "prune"]
