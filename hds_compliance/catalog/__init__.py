"""The catalogue: controls, named parameters and profiles as YAML, the frameworks they reference, coverage."""

from hds_compliance.catalog.load import (
    default_controls_dir,
    lint_catalog,
    load_catalog,
    profiles,
    schema_json,
)
from hds_compliance.catalog.models import (
    ALL_ACTIVITIES,
    Attestation,
    Catalog,
    CheckRef,
    Control,
    Parameter,
    ParameterValue,
    Profile,
    References,
)

__all__ = [
    "ALL_ACTIVITIES",
    "Attestation",
    "Catalog",
    "CheckRef",
    "Control",
    "Parameter",
    "ParameterValue",
    "Profile",
    "References",
    "default_controls_dir",
    "lint_catalog",
    "load_catalog",
    "profiles",
    "schema_json",
]
