"""``python -m deb_orchestrator.cli`` = ``deb-orchestrator``."""

import sys

from deb_orchestrator.cli import main

sys.exit(main())
