"""Built-in deb-mock configurations (TOML)."""
