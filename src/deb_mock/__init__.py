"""deb-mock: clean, isolated, cached chroot builds of Debian source packages."""

__version__ = "0.1.0"
