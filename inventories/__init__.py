"""Inventories (pyinfra inventory files); shipped as ``hds_compliance.inventories`` for the default ``local.py``."""
