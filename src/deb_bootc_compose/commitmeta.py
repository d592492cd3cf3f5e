"""The image's package list in its OSTree commit metadata: ``deb-bootc.packages``, a string holding a JSON
object (package → version, keys sorted, compact), so a client tells what an update changes from the commit alone
(``ostree pull --commit-metadata-only``, then ``ostree show --print-metadata-key=deb-bootc.packages``).

Packages of a foreign architecture are keyed ``name:arch``. ``ostree show`` prints the value as a GVariant
string, ``'{"bash":"5.2.37-2",...}'``: Python's standard library reads it with :func:`ast.literal_eval` and
:func:`json.loads` (:func:`parse_packages`; the ``deb-bootc`` client does the same). Debian package names and
versions hold no quotes or backslashes; :func:`packages_json` refuses any that would.
The value travels as one ``ostree commit`` argument: Linux bounds one argument to 128 KiB (about 4000 packages).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable

from deb_bootc_compose.errors import ComposeError

PACKAGES_KEY = "deb-bootc.packages"
MAX_ARGUMENT = 128 * 1024 - 1024  # MAX_ARG_STRLEN, with room for the option name
NAME = re.compile(r"^[a-z0-9][a-z0-9+.\-]*(:[a-z0-9\-]+)?$")
VERSION = re.compile(r"^[A-Za-z0-9.+~:\-]+$")


def packages_json(packages: Iterable[tuple[str, str, str]], native_arch: str) -> str:
    """The JSON object for (name, version, arch) triples: keys sorted, no spaces (deterministic)."""
    items: dict[str, str] = {}
    for name, version, arch in packages:
        key = name if arch in (native_arch, "all") else f"{name}:{arch}"
        if not NAME.match(key) or not VERSION.match(version):
            raise ComposeError(f"package {key!r} version {version!r} is not a Debian package name and version")
        items[key] = version
    return json.dumps(items, sort_keys=True, separators=(",", ":"))


def metadata_argument(packages: Iterable[tuple[str, str, str]], native_arch: str) -> str | None:
    """The ``--add-metadata-string=`` argument, or None when it would exceed one command-line argument."""
    arg = f"--add-metadata-string={PACKAGES_KEY}={packages_json(packages, native_arch)}"
    return arg if len(arg.encode()) <= MAX_ARGUMENT else None


def parse_packages(text: str) -> dict[str, str]:
    """What ``ostree show --print-metadata-key=deb-bootc.packages`` printed, as a dict (stdlib only)."""
    value = json.loads(ast.literal_eval(text.strip()))
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValueError(f"{PACKAGES_KEY} is not a package → version map: {text[:200]!r}")
    return value
