"""The deb-bootc client lives in packaging/deb-bootc (a Debian source package, not in src/): import it from there."""

from __future__ import annotations

import sys
from pathlib import Path

CLIENT = Path(__file__).resolve().parents[2] / "packaging" / "deb-bootc"
if str(CLIENT) not in sys.path:
    sys.path.insert(0, str(CLIENT))
