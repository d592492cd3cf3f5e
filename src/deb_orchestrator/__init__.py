"""deb-orchestrator: Koji for Debian — a hub with a REST API, builders running deb-mock, tags as signed apt repos."""

__all__: list[str] = []
