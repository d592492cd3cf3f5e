"""deb-mock's plugins: the interface (:mod:`.base`), which run (:mod:`.loader`), running them (:mod:`.runner`),
their throw-away roots (:mod:`.toolroot`) and the built-in ones (``tmpfs``, ``lintian``, ``sign``).
See docs/plugins.md."""

from deb_mock.plugins.base import Hook, Plugin, PluginContext, PluginFailed, PluginOptions

__all__ = ["Hook", "Plugin", "PluginContext", "PluginFailed", "PluginOptions"]
