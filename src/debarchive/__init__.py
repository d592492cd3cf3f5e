"""Debian archive formats the tools share: source packages (.dsc fetch and verify), apt repositories
(writing, signing) and OpenPGP keys for them."""
