"""``deb-bootc-compose lint IMAGE``: is an OCI image (ours, or one a Containerfile made ``FROM`` ours) still a
bootable Debian bootc image?

:mod:`.fetch` finds the image (an OCI layout read in place, or one skopeo copies), :mod:`.unpack` applies its
layers to a skeleton tree (whiteouts honoured, links never followed, only the bytes the rules read written),
:mod:`.initramfs` lists the initramfs, :mod:`.rules` runs the compose's own tree lint
(:mod:`deb_bootc_compose.lint`) on the skeleton plus the rules only an image needs, each with a severity,
and :mod:`.cli` is the verb.
"""

from deb_bootc_compose.imagelint.rules import RULES, ImageProblem, lint_tree

__all__ = ["RULES", "ImageProblem", "lint_tree"]
