"""Plugins of deb-bootc-compose (docs/plugins.md): Python plugins called before and after each phase
(:mod:`.api`: the interface; :mod:`.loader`: the built-in ones and the ``deb_bootc_compose.plugins`` entry
points), the manifest's ``hooks:`` commands run in a sandbox (:mod:`.hooks`), and :mod:`.runner`, which the
compose calls around every phase. Built in: ``sbom`` (:mod:`.sbom`)."""
