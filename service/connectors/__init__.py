"""The CA-facing side: the protocol (``base``), the plug-in registry (``registry``), one sub-package per CA type."""
