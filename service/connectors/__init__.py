"""The CA-facing side: one sub-package per CA, behind the protocol of ``base``."""
