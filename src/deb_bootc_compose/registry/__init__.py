"""Registry side of a compose: sigstore keys (:mod:`.keys`), the push (:mod:`.push`, :mod:`.images`,
:mod:`.skopeo`, :mod:`.sigstore_attach`, :mod:`.gpgsign`) and the containers policy images trust it with
(:mod:`.policy`)."""
