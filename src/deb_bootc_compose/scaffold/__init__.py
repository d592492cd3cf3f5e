"""``deb-bootc-compose init NAME --from BASE [--containerfile]``: a variant project to start from.

Two ways to make a custom variant of one of our images (docs/variants.md):

* **manifest** (default): ``BASE`` is a compose directory (or its ``latest-`` link): the project gets a derived
  ``NAME.yaml`` (``base: {compose, variant}``, :mod:`.derived`) with the new identity (os-release ``ID``,
  ``NAME``, ``VERSION_ID``, ``VARIANT_ID``, ``ID_LIKE=debian``, ``/etc/issue``, ``/etc/motd``); the rest comes
  from the base compose. ``BASE`` a manifest: ``NAME.yaml`` is a copy of its sources, packages, files and
  scripts with one variant (``--variant``, ``base`` by default) and the new identity. Either way never the base's
  ``update`` section (a derived image follows its own update server). Files a base manifest reads are copied.
* **Containerfile** (``--containerfile``): ``BASE`` is one of our OCI images (``oci-archive:FILE``,
  ``oci:DIR``, ``docker://REF``, ``containers-storage:REF``, or a compose directory: its variant's OCI layout).
  The project gets a ``Containerfile`` (``FROM`` it, ``apt-get install``, the identity files) and the files it
  copies in.

Both get a ``README.md`` and a ``build.sh`` that builds, lints and boot-tests the result
(:mod:`.templates`; the writing in :mod:`.project`).
"""

from .project import Identity, ScaffoldError, check_name, containerfile_project, manifest_project

__all__ = ["Identity", "ScaffoldError", "check_name", "containerfile_project", "manifest_project"]
