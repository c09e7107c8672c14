"""A plugin module that cannot be imported on this machine."""

raise RuntimeError("this plugin needs a GPU")
