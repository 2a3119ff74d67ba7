"""Builders shared by every test folder: fake clocks, keys and CSRs, CA settings.

Plain modules (no fixtures): a test imports what it builds with, and
``tests/conftest.py`` wraps the common ones as fixtures (``clock``,
``make_csr``, ``ca_settings``).
"""
