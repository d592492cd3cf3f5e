"""lint: a good small fake tree passes; each deliberately broken rule is reported by name, all at once."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from deb_bootc_compose import lint

KVER = "6.12.0-1-amd64"


def good_tree(t: Path, container_form: bool = True) -> Path:
    etc = t / ("etc" if container_form else "usr/etc")
    for d in ("usr/lib/modules/" + KVER, "usr/lib/sysimage/dpkg", "usr/lib/tmpfiles.d", "usr/lib/ostree", "var/lib",
              "boot", "dev", "proc", "sys", "run", "tmp", "sysroot", "etc/ssh" if container_form else "usr/etc/ssh",
              "usr/etc/default" if not container_form else "etc/default"):
        (t / d).mkdir(parents=True, exist_ok=True)
    (t / f"usr/lib/modules/{KVER}/vmlinuz").write_bytes(b"kernel")
    (t / f"usr/lib/modules/{KVER}/initramfs.img").write_bytes(b"initramfs")
    (t / "usr/lib/sysimage/dpkg/status").write_text("Package: x\n")
    (t / "var/lib/dpkg").symlink_to("../../usr/lib/sysimage/dpkg")
    (t / "usr/lib/tmpfiles.d/autovar.conf").write_text("L+ /var/lib/dpkg - - - - ../../usr/lib/sysimage/dpkg\n")
    (t / "usr/lib/ostree/prepare-root.conf").write_text("[sysroot]\nreadonly = true\n")
    for name, target in lint.TOPLEVEL_LINKS.items():
        (t / name).symlink_to(target)
    (etc / "machine-id").write_text("")
    (etc / "shadow").write_text("root:!*:20000:0:99999:7:::\n")
    (etc / "locale.conf").write_text("LANG=C.UTF-8\n")
    (etc / "default/grub").write_text("GRUB_TIMEOUT=5\n")
    (etc / "ssh/sshd_config").write_text("")
    return t


def test_good_tree_passes(tmp_path: Path) -> None:
    assert lint.check(good_tree(tmp_path)) == []


def test_good_ostree_form_passes(tmp_path: Path) -> None:
    assert lint.check(good_tree(tmp_path, container_form=False), container_form=False) == []


def test_wrong_form_is_reported(tmp_path: Path) -> None:
    rules = {p.rule for p in lint.check(good_tree(tmp_path), container_form=False)}
    assert rules == {"etc-location", "machine-id", "root-locked", "locale", "grub-default"}


def _rm(rel: str) -> Callable[[Path], None]:
    def f(t: Path) -> None:
        p = t / rel
        if p.is_symlink() or p.is_file():
            p.unlink()
        else:
            import shutil

            shutil.rmtree(p)

    return f


def _write(rel: str, data: str) -> Callable[[Path], None]:
    def f(t: Path) -> None:
        (t / rel).parent.mkdir(parents=True, exist_ok=True)
        (t / rel).write_text(data)

    return f


def _relink(rel: str, target: str) -> Callable[[Path], None]:
    def f(t: Path) -> None:
        (t / rel).unlink()
        (t / rel).symlink_to(target)

    return f


def _dir_instead_of_link(rel: str) -> Callable[[Path], None]:
    def f(t: Path) -> None:
        (t / rel).unlink()
        (t / rel).mkdir()

    return f


def _fifo(rel: str) -> Callable[[Path], None]:
    def f(t: Path) -> None:
        os.mkfifo(t / rel)

    return f


def _devnode(t: Path) -> None:
    import stat

    os.mknod(t / "usr/lib/null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))


BREAKAGES = {
    "kernel": _rm(f"usr/lib/modules/{KVER}/vmlinuz"),
    "initramfs": _rm(f"usr/lib/modules/{KVER}/initramfs.img"),
    "boot-empty": _write("boot/vmlinuz-6.12", "k"),
    "boot-links": lambda t: (t / "vmlinuz").symlink_to("boot/vmlinuz-6.12"),
    "machine-id": _write("etc/machine-id", "0123456789abcdef0123456789abcdef\n"),
    "dpkg-db": _rm("usr/lib/sysimage/dpkg/status"),
    "dpkg-link": _rm("var/lib/dpkg"),
    "var-empty": _write("var/log/dpkg.log", "x"),
    "toplevel-links": _dir_instead_of_link("home"),
    "prepare-root": _rm("usr/lib/ostree/prepare-root.conf"),
    "ssh-host-keys": _write("etc/ssh/ssh_host_ed25519_key", "secret"),
    "root-locked": _write("etc/shadow", "root:$6$salt$hash:20000:0:99999:7:::\n"),
    "locale": _rm("etc/locale.conf"),
    "grub-default": _rm("etc/default/grub"),
    "api-dirs-empty": _write("run/leftover.pid", "1"),
    "special-files": _fifo("usr/lib/a-fifo"),
    "etc-location": lambda t: (t / "usr/etc").mkdir(),
}


@pytest.mark.parametrize("rule", sorted(BREAKAGES))
def test_each_broken_rule_is_named(tmp_path: Path, rule: str) -> None:
    t = good_tree(tmp_path)
    BREAKAGES[rule](t)
    problems = lint.check(t)
    assert rule in {p.rule for p in problems}, problems
    assert all(str(p).startswith(f"[{p.rule}] /") for p in problems)


def test_device_node_is_reported(tmp_path: Path) -> None:
    t = good_tree(tmp_path)
    _devnode(t)
    assert [str(p) for p in lint.check(t)] == [
        "[special-files] /usr/lib/null: device nodes, fifos and sockets cannot be committed"
    ]


def test_dpkg_link_to_wrong_place(tmp_path: Path) -> None:
    t = good_tree(tmp_path)
    _relink("var/lib/dpkg", "/var/lib/dpkg-elsewhere")(t)
    assert [p.rule for p in lint.check(t)] == ["dpkg-link"]


def test_missing_tmpfiles_entry(tmp_path: Path) -> None:
    t = good_tree(tmp_path)
    (t / "usr/lib/tmpfiles.d/autovar.conf").write_text("d /var/log 0755 0 0 - -\n")
    problems = lint.check(t)
    assert [p.rule for p in problems] == ["dpkg-link"] and "tmpfiles.d" in problems[0].message


def test_several_problems_all_reported(tmp_path: Path) -> None:
    t = good_tree(tmp_path)
    for rule in ("machine-id", "ssh-host-keys", "var-empty", "toplevel-links"):
        BREAKAGES[rule](t)
    assert {p.rule for p in lint.check(t)} == {"machine-id", "ssh-host-keys", "var-empty", "toplevel-links"}
