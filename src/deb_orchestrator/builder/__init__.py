"""The builder daemon: claims tasks from a hub and builds them with deb-mock's Python API."""
