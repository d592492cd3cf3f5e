"""``deb-orchestrator``: the hub, the builder and koji-style client commands (one module per group)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from deb_orchestrator.cli import admin, audit, builds, plugins, server, tags, webhooks
from deb_orchestrator.cli.common import UsageError
from deb_orchestrator.client import HubError, HubUnreachable
from debarchive.dsc import SourcePackageError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="deb-orchestrator",
        description="Koji for Debian: a hub, builders running deb-mock, tags published as signed apt repos.",
        epilog="Hub URL and token: --hub/--token, DEB_ORCHESTRATOR_HUB/DEB_ORCHESTRATOR_TOKEN, or "
        "~/.config/deb-orchestrator/config.toml (hub = \"…\", token = \"…\" or token_file = \"…\").",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (server, builds, tags, plugins, admin, webhooks, audit):
        module.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (UsageError, SourcePackageError) as exc:
        print(f"deb-orchestrator: {exc}", file=sys.stderr)
        return 2
    except HubUnreachable as exc:
        print(f"deb-orchestrator: {exc.detail}", file=sys.stderr)
        return 1
    except HubError as exc:
        print(f"deb-orchestrator: {exc.detail} (HTTP {exc.status})", file=sys.stderr)
        return 1
    except TimeoutError as exc:
        print(f"deb-orchestrator: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
