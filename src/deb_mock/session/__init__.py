"""Building: dependency resolution, the build itself, results."""
