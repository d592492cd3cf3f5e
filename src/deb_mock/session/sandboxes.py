"""The sandboxes a build uses: apt work as ns-root with network, the build as the build user without."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from deb_mock import aptsources
from deb_mock.config import SANDBOX_HOSTNAME, MockConfig
from deb_mock.errors import BadInput
from deb_mock.profiles import build_env
from deb_mock.request import AptSource
from debsandbox.sandbox import Bind, OverlayRoot, Sandbox

EXTRA_LIST = "deb-mock-extra.list"


@dataclass
class ExtraSources:
    """Extra apt sources made ready for a sandbox: a sources list, keys, and binds for file:// repos."""

    dir: Path
    binds: list[Bind] = field(default_factory=list)
    present: bool = False

    @classmethod
    def prepare(cls, sources: list[AptSource], workdir: Path) -> ExtraSources:
        """Check each source (:mod:`deb_mock.aptsources`), copy its key and write the sources list."""
        d = workdir / "extra"
        (d / "keys").mkdir(parents=True, exist_ok=True)
        out = cls(d)
        lines = []
        for i, src in enumerate(sources):
            where = f"extra apt repository {src.url}"
            try:
                aptsources.check_source(src, where)
                key = aptsources.key_material(src.key, where) if src.key else None
            except aptsources.SourceError as exc:
                raise BadInput(str(exc)) from None
            key_path = None
            if key is not None:
                key_file = d / "keys" / f"deb-mock-{i}{key[1]}"
                key_file.write_bytes(key[0])
                key_path = f"/etc/apt/keyrings/{key_file.name}"
            url = src.url
            if url.startswith("file:"):
                inner = f"/deb-mock/repos/{i}"
                out.binds.append(Bind(Path(aptsources.file_path(url)), inner, ro=True))
                url = f"file:{inner}"
            lines.append(AptSource(url, src.suite, src.components, None, src.trusted).one_line(key_path))
        if lines:
            (d / EXTRA_LIST).write_text("\n".join(lines) + "\n")
            out.present = True
        for p in [d, d / "keys", *d.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        return out


def apt_script(*, full_update: bool, extra: bool, body: str) -> str:
    """A shell script for ns-root: install extra sources, refresh apt lists as needed, then ``body``."""
    lines = [
        "set -e",
        "export DEBIAN_FRONTEND=noninteractive",
        "mkdir -p /etc/apt/keyrings",
    ]
    if extra:
        lines += [
            f"cp /deb-mock/extra/{EXTRA_LIST} /etc/apt/sources.list.d/",
            'for k in /deb-mock/extra/keys/*; do [ -e "$k" ] && cp "$k" /etc/apt/keyrings/; done',
        ]
    update = ""
    if full_update:
        update = "apt-get update --error-on=any"
    elif extra:
        update = (
            f"apt-get update --error-on=any -o Dir::Etc::SourceList=/etc/apt/sources.list.d/{EXTRA_LIST} "
            "-o Dir::Etc::SourceParts=/dev/null -o APT::Get::List-Cleanup=0"
        )
    if update:
        lines.append(f"{update} || {{ echo 'deb-mock: apt-get update failed' >&2; exit 42; }}")
    lines.append(body)
    return "\n".join(lines) + "\n"


def root_sandbox(lower: tuple[Path, ...], builddir: Path, name: str, binds: list[Bind], network: bool) -> Sandbox:
    return Sandbox(
        root=OverlayRoot(lower, builddir / name, builddir / f"{name}.work"),
        binds=list(binds),
        network=network,
        hostname=SANDBOX_HOSTNAME,
        env={"DEBIAN_FRONTEND": "noninteractive"},
    )


def build_sandbox(
    config: MockConfig,
    lower: tuple[Path, ...],
    builddir: Path,
    binds: list[Bind],
    network: bool,
    profiles: list[str] | None = None,
    tmpfs: dict[str, str | None] | None = None,
    plugin_env: dict[str, str] | None = None,
) -> Sandbox:
    """The build's sandbox; ``tmpfs`` maps mount points to their size (the tmpfs plugin sets them: ``/tmp``
    by default, see docs/plugins.md); ``plugin_env`` is what plugins add to its environment (ccache's)."""
    env = {"HOME": "/build", "USER": config.build_user, "LOGNAME": config.build_user}
    env.update(build_env(config, profiles or []))
    env.update(plugin_env or {})
    return Sandbox(
        root=OverlayRoot(lower, builddir / "upper", builddir / "upper.work"),
        binds=list(binds),
        tmpfs=list(tmpfs or {}),
        tmpfs_size={k: v for k, v in (tmpfs or {}).items() if v},
        network=network,
        hostname=SANDBOX_HOSTNAME,
        uid=config.build_uid,
        gid=config.build_uid,
        cwd="/build",
        env=env,
    )
