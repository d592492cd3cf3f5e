"""``deb-bootc-compose lint IMAGE`` on small synthetic trees and OCI layouts: each image rule broken on its own
(severity, path, message), the tree lint's rules with an image's severities, the initramfs reader (early cpio,
gzip, xz, zstd, garbage), the layer applier (whiteouts, opaque directories, planted links, hard links out of
the tree, damaged blobs, sparse files, device nodes) and the command line (exit codes, --json,
--fatal-warnings, --skip)."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from imagelint_helpers import (
    entry,
    good_image_tree,
    initramfs,
    newc,
    tar_layer,
    tree_layer,
    write_layout,
)
from test_compose_lint import KVER

from deb_bootc_compose.cli import main
from deb_bootc_compose.imagelint import fetch, unpack
from deb_bootc_compose.imagelint import initramfs as initrd
from deb_bootc_compose.imagelint.rules import RULES, lint_tree

LABELS = {"containers.bootc": "1", "ostree.linux": KVER}
KDIR = f"usr/lib/modules/{KVER}"


def problems(t: Path, labels: dict[str, str] | None = None) -> dict[str, list[str]]:
    """rule → its messages (with severity and path) for the tree ``t``."""
    out: dict[str, list[str]] = {}
    for p in lint_tree(t, labels=LABELS if labels is None else labels):
        out.setdefault(p.rule, []).append(str(p))
    return out


def test_good_image_tree_is_clean(tmp_path: Path) -> None:
    assert problems(good_image_tree(tmp_path)) == {}


def _write(rel: str, data: str | bytes = "x") -> Callable[[Path], None]:
    def f(t: Path) -> None:
        (t / rel).parent.mkdir(parents=True, exist_ok=True)
        (t / rel).write_bytes(data.encode() if isinstance(data, str) else data)
    return f


def _rm(rel: str) -> Callable[[Path], None]:
    return lambda t: (t / rel).unlink()


def _sources(text: str) -> Callable[[Path], None]:
    return _write("etc/apt/sources.list.d/compose.sources", text)


# rule → (how to break it, severity, words its message holds)
BREAKAGES: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "kernel-modules": (_rm(f"{KDIR}/modules.dep"), "error", "vmlinuz without modules"),
    "kernel-incomplete": (lambda t: (_write("usr/lib/modules/7.0-amd64/modules.dep")(t),
                                     _write("boot/vmlinuz-7.0-amd64")(t)),
                          "warning", "its vmlinuz is /boot/vmlinuz-7.0-amd64"),
    "initramfs-kernel": (_write(f"{KDIR}/initramfs.img", initramfs("6.1.0-9-amd64")), "error",
                         f"built for 6.1.0-9-amd64, not for the kernel {KVER}"),
    "initramfs-ostree": (_write(f"{KDIR}/initramfs.img", initramfs(ostree=False)), "error",
                         "no ostree-prepare-root"),
    "initramfs": (_write(f"{KDIR}/initramfs.img", b"not an initramfs at all"), "error", "not an initramfs"),
    "var-run": (_write("var/run/x.pid"), "error", "not a link to /run"),
    "var-tmpfiles": (lambda t: (t / "var/lib/podman/storage").mkdir(parents=True), "warning",
                     "/var/lib/podman, /var/lib/podman/storage"),
    "var-files": (_write("var/log/dpkg.log", "log"), "warning", "1 file(s) in /var: /var/log/dpkg.log"),
    "apt-cache": (lambda t: (_write("var/lib/apt/lists/deb.debian.org_debian_dists_trixie_InRelease")(t),
                             _write("var/cache/apt/pkgcache.bin")(t)), "warning", "apt's package lists or caches"),
    "apt-sources": (_sources("Types: deb\nURIs: http://127.0.0.1:8080/repos/t\nSuites: t\nComponents: main\n"
                             "Signed-By: /etc/apt/keyrings/gone.gpg\n"), "warning", "a loopback address"),
    "buildah-injected": (_write("etc/hostname", ""), "warning", "an empty file"),
    "boot-empty": (_write("boot/vmlinuz-x"), "warning", "must be empty"),
    "ssh-host-keys": (_write("etc/ssh/ssh_host_ed25519_key"), "error", "made at first boot"),
    "root-locked": (_write("etc/shadow", "root:$6$s$h:1:0:99999:7:::\n"), "warning", "usable password"),
    "machine-id": (_write("etc/machine-id", "0" * 32 + "\n"), "error", "not empty"),
    "kernel": (_rm(f"{KDIR}/vmlinuz"), "error", "no bootable kernel"),
    "dpkg-db": (_rm("usr/lib/sysimage/dpkg/status"), "error", "missing"),
    "var-empty": (lambda t: (t / "var/cache/debconf").mkdir(parents=True), "error", "debconf database"),
}


@pytest.mark.parametrize("rule", sorted(BREAKAGES))
def test_each_rule_with_its_severity(tmp_path: Path, rule: str) -> None:
    t = good_image_tree(tmp_path)
    breaks, severity, words = BREAKAGES[rule]
    breaks(t)
    found = problems(t)
    assert rule in found, found
    assert all(m.startswith(f"{severity}: [{rule}] /") for m in found[rule]), found[rule]
    assert any(words in m for m in found[rule]), found[rule]
    assert all("\n    → " in m for ms in found.values() for m in ms)  # every message says what to do


def test_regenerate_hint_names_the_kernel(tmp_path: Path) -> None:
    t = good_image_tree(tmp_path)
    _write(f"{KDIR}/initramfs.img", initramfs("6.1.0-9-amd64"))(t)
    (p,) = [p for p in lint_tree(t, labels=LABELS) if p.rule == "initramfs-kernel"]
    assert f"--force /usr/lib/modules/{KVER}/initramfs.img {KVER}" in p.hint and "--add ostree" in p.hint


def test_apt_sources_missing_keyring(tmp_path: Path) -> None:
    t = good_image_tree(tmp_path)
    _rm("usr/share/keyrings/debian-archive-keyring.gpg")(t)
    assert [m.split(": ", 2)[2] for m in problems(t)["apt-sources"]] == [
        "Signed-By /usr/share/keyrings/debian-archive-keyring.gpg is not in the image: apt-get update refuses the "
        "source\n    → " + RULES["apt-sources"].hint]


def test_labels(tmp_path: Path) -> None:
    t = good_image_tree(tmp_path)
    found = problems(t, {"ostree.linux": "5.0-amd64"})["labels"]
    assert len(found) == 2 and "containers.bootc=1" in found[0] and "the kernel is " + KVER in found[1]


def test_var_covered_by_tmpfiles_is_fine(tmp_path: Path) -> None:
    t = good_image_tree(tmp_path)
    (t / "var/lib/apt/lists/partial").mkdir(parents=True)
    (t / "var/cache/apt").mkdir(parents=True)
    (t / "var/lib/containers").mkdir(parents=True)
    (t / "etc/tmpfiles.d").mkdir()
    (t / "etc/tmpfiles.d/c.conf").write_text("d /var/lib/containers/storage 0700 0 0 - -\n")
    assert problems(t) == {}


@pytest.mark.parametrize("compress", ["gzip", "xz", "zstd", "none"])
def test_initramfs_listing(tmp_path: Path, compress: str) -> None:
    img = tmp_path / "initramfs.img"
    img.write_bytes(initramfs("6.12.1-amd64", compress=compress, early=True))
    listing = initrd.list_names(img)
    assert listing.kernel_versions == {"6.12.1-amd64"} and listing.has_ostree
    assert "early_cpio" in listing.names and "usr/bin/systemd" in listing.names


def test_initramfs_garbage(tmp_path: Path) -> None:
    img = tmp_path / "initramfs.img"
    img.write_bytes(newc(["a"])[:200])
    with pytest.raises(initrd.InitramfsError):
        initrd.list_names(img)
    img.write_bytes(b"\x1f\x8bgarbage" * 10)
    with pytest.raises(initrd.InitramfsError):
        initrd.list_names(img)


def _image(tmp_path: Path, *layers: bytes, labels: dict[str, str] | None = None) -> fetch.Image:
    layout = write_layout(tmp_path / "layout", list(layers), labels)
    return fetch.open_image(f"oci:{layout}:1", tmp_path / "scratch")


def test_layers_with_whiteouts(tmp_path: Path) -> None:
    base = tar_layer([entry("etc", tarfile.DIRTYPE), (entry("etc/a"), b"a"), (entry("etc/b"), b"b"),
                      entry("opt", tarfile.DIRTYPE), entry("opt/sub", tarfile.DIRTYPE), (entry("opt/sub/old"), b"o"),
                      (entry("usr/big"), b"z" * 5000)])
    top = tar_layer([(entry("opt/new"), b"n"), entry("opt/.wh..wh..opq"), entry("etc/.wh.a"),
                     (entry("etc/c"), b"c"), entry("dev/null", tarfile.CHRTYPE)])
    out = unpack.unpack(_image(tmp_path, base, top), tmp_path / "tree")
    root = out.root
    assert sorted(os.listdir(root / "etc")) == ["b", "c"] and (root / "etc/c").read_bytes() == b"c"
    assert sorted(os.listdir(root / "opt")) == ["new"]  # the opaque directory hid opt/sub, kept its own
    big = (root / "usr/big").stat()
    assert big.st_size == 5000 and big.st_blocks == 0  # sparse: the size without the bytes
    assert (root / "dev/null").is_fifo()


@pytest.mark.parametrize("member", [
    (entry("etc", tarfile.SYMTYPE, "/tmp"), entry("etc/escaped")),  # through a link a layer planted
    (entry("../escaped"),),
    (entry("/abs"),),
    (entry("x", tarfile.LNKTYPE, "../../etc/passwd"),),
])
def test_hostile_layers_are_refused(tmp_path: Path, member: tuple[tarfile.TarInfo, ...]) -> None:
    image = _image(tmp_path, tar_layer(list(member)))
    with pytest.raises(fetch.ImageError, match="refused"):
        unpack.unpack(image, tmp_path / "tree")
    assert not Path("/tmp/escaped").exists()


def test_damaged_blob_is_refused(tmp_path: Path) -> None:
    image = _image(tmp_path, tar_layer([(entry("a"), b"a")]))
    data = bytearray(image.layers[0].path.read_bytes())
    data[-9] ^= 0xFF  # the gzip trailer's CRC: decompression may pass, the digest does not
    image.layers[0].path.write_bytes(bytes(data))
    with pytest.raises(fetch.ImageError, match=r"damaged|not a readable"):
        unpack.unpack(image, tmp_path / "tree")


def test_unpacked_bounds(tmp_path: Path) -> None:
    image = _image(tmp_path, tar_layer([(entry(f"f{i}"), b"") for i in range(20)]))
    with pytest.raises(fetch.ImageError, match="entries"):
        unpack.unpack(image, tmp_path / "tree", fetch.Limits(entries=10))


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["lint", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = good_image_tree(tmp_path / "tree")
    layout = write_layout(tmp_path / "good", [tree_layer(tree)], {"ostree.linux": KVER})
    scratch = ["--scratch", str(tmp_path / "scratch")]
    code, out, _ = _cli([f"oci:{layout}", *scratch], capsys)
    assert code == 0 and out.startswith(f"oci:{layout}: 0 error(s), 0 warning(s) ("), out
    _write("etc/ssh/ssh_host_rsa_key")(tree)
    _write("var/log/apt/history.log")(tree)
    bad = write_layout(tmp_path / "bad", [tree_layer(tree)], {"ostree.linux": KVER})
    code, out, _ = _cli([f"oci:{bad}:1", *scratch], capsys)
    assert code == 1 and "error: [ssh-host-keys] /etc/ssh/ssh_host_rsa_key:" in out and "warning: [var-files]" in out
    code, out, _ = _cli([f"oci:{bad}:1", "--json", *scratch], capsys)
    report = json.loads(out)
    assert code == 1 and (report["errors"], report["warnings"]) == (1, 2)
    assert {p["rule"] for p in report["problems"]} == {"ssh-host-keys", "var-files", "var-tmpfiles"}
    code, _, _ = _cli([f"oci:{bad}:1", "--skip", "ssh-host-keys", *scratch], capsys)
    assert code == 0
    code, _, _ = _cli([f"oci:{bad}:1", "--skip", "ssh-host-keys", "--fatal-warnings", *scratch], capsys)
    assert code == 1
    assert not list((tmp_path / "scratch").iterdir())  # nothing left behind


def test_cli_oci_archive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An oci-archive (skopeo copies it into the scratch directory, layers decompressed) with a broken rule."""
    tree = good_image_tree(tmp_path / "tree")
    _write("etc/machine-id", "0" * 32 + "\n")(tree)
    layout = write_layout(tmp_path / "layout", [tree_layer(tree)], {"ostree.linux": KVER})
    archive = tmp_path / "image.oci-archive"
    with tarfile.open(archive, "w") as tar:
        for p in sorted(layout.rglob("*")):
            tar.add(p, arcname=str(p.relative_to(layout)), recursive=False)
    code, out, _ = _cli([f"oci-archive:{archive}", "--scratch", str(tmp_path / "scratch")], capsys)
    assert code == 1 and "error: [machine-id] /etc/machine-id: not empty" in out, out


@pytest.mark.parametrize("spec, words", [
    ("oci:{tmp}/nothing", "not a directory"),
    ("oci:{tmp}/good:nosuchtag", "no tag 'nosuchtag' (tags: 1)"),
    ("oci-archive:{tmp}/none.tar", "no such file"),
    ("{tmp}", "not an image"),
])
def test_cli_unreadable_image(tmp_path: Path, capsys: pytest.CaptureFixture[str], spec: str, words: str) -> None:
    write_layout(tmp_path / "good", [tar_layer([(entry("a"), b"a")])])
    code, _, err = _cli([spec.format(tmp=tmp_path), "--scratch", str(tmp_path / "s")], capsys)
    assert code == 2 and words in err, err
    shutil.rmtree(tmp_path / "s", ignore_errors=True)


def test_cli_unknown_rule(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(["oci:/nonexistent", "--skip", "nosuchrule"], capsys)
    assert code == 2 and "unknown rule(s) nosuchrule" in err
