"""Automated checks shipped with hds_compliance, one module per area (installed as ``hds_compliance.checks``).

Each module registers small pure functions with :func:`hds_compliance.check.check`; logic lives here,
the human text (titles, rationale, remediation, references) lives in ``controls/*.yaml``.
"""
