"""The hub: REST API, database, scheduler, tag repositories, artifact store and read-only web pages."""
