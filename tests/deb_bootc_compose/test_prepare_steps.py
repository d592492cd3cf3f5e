"""The tree preparation's steps: one module each, every module in the ordered list exactly once, in the order
the OSTree layout needs (the steps themselves run on the real tree in test_compose_integration.py)."""

from __future__ import annotations

import pkgutil

import deb_bootc_compose.prepare as prepare
from deb_bootc_compose.prepare import STEPS


def test_every_step_module_is_in_the_list_once() -> None:
    modules = {m.name for m in pkgutil.iter_modules(prepare.__path__)} - {"base"}
    listed = [s.run.__module__.rsplit(".", 1)[1] for s in STEPS]
    assert sorted(listed) == sorted(modules)
    assert len({s.name for s in STEPS}) == len(STEPS)


def test_step_order_constraints() -> None:
    order = [s.name for s in STEPS]
    before = [
        ("toplevel", "users"),  # homes in /var/home
        ("files", "postprocess"),  # scripts see the manifest's files
        ("os-release", "postprocess"),  # scripts see the image's identity
        ("os-release", "initramfs"),  # dracut copies /usr/lib/os-release into the initramfs
        ("kernel", "initramfs"),  # dracut needs the kernel version
        ("initramfs", "boot-dir"),  # dracut runs with /boot as the kernel package left it
        ("sysimage", "autovar"),  # the dpkg link becomes an L+ line
        ("autovar", "api-dirs"),
        ("adopt", "lint"),
    ]
    for first, then in before:
        assert order.index(first) < order.index(then), (first, then)
    assert order[-1] == "lint"
