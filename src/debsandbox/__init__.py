"""Running host commands with logs, and running them inside user/mount/pid/net namespaces.

Shared by deb-mock (builds), deb-orchestrator (repository work) and deb-bootc-compose (rootfs,
postprocess scripts).
"""
