"""Read-only web pages (server-rendered with Jinja2): tasks, builds, tags, hosts."""
