"""A derived image over a base image (derive/layers.py) on small synthetic trees: the base's layers verbatim, one
layer with what changed and OCI whiteouts for what is gone, and the layers applied in order give exactly the
derived tree (checked with the same file index code and, independently, with tarfile)."""

from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path

import pytest
from synthetic import KVER, SDE, add_package, make_tree, noise

from deb_bootc_compose.derive.basecompose import BaseImage, image_of
from deb_bootc_compose.derive.fileindex import image_index, tree_record
from deb_bootc_compose.derive.layers import write_derived_image
from deb_bootc_compose.oci import ImageOptions, OciError, write_oci_image
from deb_bootc_compose.oci.analysis import analyze_tree


def base_image(tmp_path: Path) -> tuple[Path, BaseImage]:
    tree = make_tree(tmp_path / "base")
    out = tmp_path / "base-oci"
    write_oci_image(tree, out, ref_name="13", labels={}, source_date_epoch=SDE, kernel_version=KVER,
                    ostree_commit=None, previous_plan=None, plan_out=out / "plan.json")
    return tree, BaseImage(out / "layout", image_of(out / "layout"))


def derive(tree: Path, image: BaseImage, out: Path) -> list[dict[str, object]]:
    analysis = analyze_tree(tree, KVER)
    options = ImageOptions(ref_name="1", labels={"org.opencontainers.image.title": "derived"},
                           source_date_epoch=SDE + 100, kernel_version=KVER, ostree_commit=None,
                           plan_out=out / "plan.json", archive_name="derived.oci-archive")
    messages: list[str] = []
    result = write_derived_image(analysis, image, out, options, progress=messages.append)
    assert result.archive_path.is_file() and result.layers[-1].id == "derived"
    import json
    index = json.loads((result.layout_dir / "index.json").read_text())
    manifest = json.loads((result.layout_dir / "blobs/sha256" / index["manifests"][0]["digest"][7:]).read_text())
    return list(manifest["layers"])


def blobs(layout: Path, layers: list[dict[str, object]]) -> list[Path]:
    return [layout / "blobs/sha256" / str(x["digest"])[7:] for x in layers]


def test_derived_image_is_the_base_layers_plus_a_layer_of_what_differs(tmp_path: Path) -> None:
    base_tree, image = base_image(tmp_path)
    tree = tmp_path / "derived"
    shutil.copytree(base_tree, tree, symlinks=True)
    os.link(tree / "usr/bin/perl", tree / "usr/bin/perl-again")  # copytree broke the hard link: make two again
    shutil.rmtree(tree / "usr/share/doc/bash")  # a package's files gone: one whiteout for the directory
    (tree / "usr/bin/hello").unlink()
    (tree / "etc/hostname").write_bytes(b"particle\n")  # changed content
    os.chmod(tree / "etc/machine-id", 0o444)  # changed mode
    add_package(tree, "htop", {"usr/bin/htop": noise("htop", 5000)})
    (tree / "sysroot").rmdir()
    (tree / "sysroot").symlink_to("usr")  # a directory that became a link
    base_layers = blobs(image.layout, __import__("json").loads(
        (image.layout / "blobs/sha256" / image.manifest_digest[7:]).read_text())["layers"])
    layers = derive(tree, image, tmp_path / "out")
    layout = tmp_path / "out/layout"
    assert [p.name for p in blobs(layout, layers[:-1])] == [p.name for p in base_layers]  # verbatim
    with tarfile.open(blobs(layout, layers)[-1], "r:gz") as tar:
        names = tar.getnames()
    assert {"usr/share/doc/.wh.bash", "usr/bin/.wh.hello", ".wh.sysroot", "sysroot", "usr/bin/htop",
            "etc/hostname", "etc/machine-id"} <= set(names), names
    assert "usr/bin/bash" not in names and "usr/lib/x86_64-linux-gnu/libc.so.6" not in names  # unchanged: not again
    assert not any(n.startswith("usr/share/doc/bash/") for n in names)
    # the layers applied in order are the derived tree, entry by entry (modification times aside)
    merged = image_index(blobs(layout, layers))
    analysis = analyze_tree(tree, KVER)
    want = {p: tree_record(tree, e, analysis.hardlinks.get(p), None, merged.get(p))
            for p, e in analysis.entries.items()}
    assert merged == want


def test_unchanged_tree_gives_an_empty_own_layer_and_a_damaged_base_is_refused(tmp_path: Path) -> None:
    base_tree, image = base_image(tmp_path)
    layers = derive(base_tree, image, tmp_path / "same")
    with tarfile.open(blobs(tmp_path / "same/layout", layers)[-1], "r:gz") as tar:
        assert tar.getnames() == []
    victim = blobs(image.layout, layers[:1])[0]
    data = bytearray(victim.read_bytes())
    data[-1] ^= 1
    os.chmod(victim, 0o644)
    victim.write_bytes(bytes(data))
    with pytest.raises(OciError, match="does not match its digest"):
        derive(base_tree, image, tmp_path / "damaged")


def hostile_layer(path: Path, members: list[tuple[str, int]]) -> Path:
    """A gzip tar layer of regular files ``(name, mode)``, owned by root, each holding b"x"."""
    import io

    with tarfile.open(path, "w:gz") as tar:
        for name, mode in members:
            info = tarfile.TarInfo(name)
            info.mode, info.size = mode, 1
            tar.addfile(info, io.BytesIO(b"x"))
    return path


def test_a_hostile_base_layer_cannot_escape_or_hide_a_set_id_bit(tmp_path: Path) -> None:
    """The base's layers are read as data. A member naming a path outside the image is refused (no whiteout for
    ``../…`` can come of it), and the index keeps set-id and sticky bits (``mode & 0o7777``): a base file that is
    set-uid where the derived tree's is not differs, so the derived layer writes the tree's own mode over it."""
    from deb_bootc_compose.derive.fileindex import FileRecord, LayerReadError, apply_layer

    for name in ("../etc/passwd", "usr/../../etc/shadow"):
        with pytest.raises(LayerReadError, match="leaves the image's root"):
            apply_layer({}, hostile_layer(tmp_path / "escape.tar.gz", [(name, 0o644)]))
    index: dict[str, FileRecord] = {}
    apply_layer(index, hostile_layer(tmp_path / "suid.tar.gz", [("usr/bin/tool", 0o4755)]))
    tree = tmp_path / "tree"
    (tree / "usr/bin").mkdir(parents=True)
    (tree / "usr/bin/tool").write_bytes(b"x")
    os.chmod(tree / "usr/bin/tool", 0o755)
    base = index["usr/bin/tool"]
    entry = next(e for p, e in analyze_tree(tree, None).entries.items() if p == "usr/bin/tool")
    mine = tree_record(tree, entry, None, None, base)
    assert base.mode == 0o4755 and mine is not None and mine.mode == 0o755
    assert mine != base  # so the derived layer carries usr/bin/tool with mode 0755
