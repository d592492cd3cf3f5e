"""SPDX 2.3 software bills of materials of compose images: licences from Debian's machine-readable copyright
files (:mod:`.licenses`, :mod:`.copyright`) and the document itself (:mod:`.document`). The ``sbom`` plugin
(:mod:`deb_bootc_compose.plugins.sbom`) writes one per image under ``metadata/sbom/``."""
