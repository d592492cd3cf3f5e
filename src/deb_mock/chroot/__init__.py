"""Chroots: the root cache (mmdebstrap), build-dependency snapshots, throw-away build roots and the
persistent working chroot, with the locks that make concurrent builds safe."""
