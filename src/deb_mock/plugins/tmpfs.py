"""The ``tmpfs`` plugin (on by default): the build's ``/tmp``, and with ``build_tree`` the whole build tree, in RAM.

Mock's tmpfs plugin puts the chroot in RAM; here the root's lower layers are cached on disk anyway, so what
goes to RAM is what the build writes: ``/tmp`` (configure scripts and test suites hammer it) and, with
``build_tree = true``, ``/build/reproducible-path`` (the unpacked source, the objects, the packages; the
results are copied to disk at the end). ``size`` caps each tmpfs (``4G``, ``512m``, ``50%`` of RAM; the
kernel's default is half the RAM); a build that outgrows it fails with an error naming this option.
With the plugin disabled (``--disable-plugin tmpfs``) everything the build writes goes to its overlay on disk.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import field_validator

from deb_mock.plugins.base import Plugin, PluginContext, PluginOptions
from deb_mock.session.buildscript import BUILD_TREE
from debsandbox.sandbox import TMPFS_SIZE


class TmpfsOptions(PluginOptions):
    tmp: bool = True  # /tmp in RAM
    build_tree: bool = False  # the build tree (/build/reproducible-path) in RAM
    size: str | None = None  # size= of each tmpfs: bytes, k, m, g or a percentage of RAM

    @field_validator("size", mode="before")
    @classmethod
    def _size(cls, v: object) -> str | None:
        if isinstance(v, int) and not isinstance(v, bool):
            v = str(v)  # bytes, as given to --plugin-option tmpfs:size=1048576
        if v is not None and not (isinstance(v, str) and TMPFS_SIZE.match(v)):
            raise ValueError(f"not a tmpfs size: {v!r} (e.g. 4G, 512m, 50%)")
        return v


class TmpfsPlugin(Plugin):
    name = "tmpfs"
    Options: ClassVar[type[PluginOptions]] = TmpfsOptions
    order = 10
    default_enabled = True

    def before_build(self, ctx: PluginContext) -> None:
        opts: TmpfsOptions = ctx.options
        mounts = (["/tmp"] if opts.tmp else []) + ([BUILD_TREE] if opts.build_tree else [])
        for m in mounts:
            ctx.build_tmpfs[m] = opts.size
        ctx.data["mounts"] = mounts
        if opts.size:
            ctx.data["size"] = opts.size
