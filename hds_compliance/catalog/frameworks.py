"""The frameworks a control may reference, as data: every valid identifier, with its title where known.

Each framework is a YAML file in ``frameworks/`` (package data). A reference to an identifier that is not
listed (``A.8.35``, ``EXI 32``, BP-028 ``R81``) is an error at load time, so a catalogue never claims to cover
a requirement that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

# Field of the References model -> framework file, in the order reports show them.
FRAMEWORK_FILES = {
    "hds": "hds-v2.yaml",
    "iso27001_2022": "iso27001-2022.yaml",
    "anssi_bp028": "anssi-bp028.yaml",
    "anssi_pa022": "anssi-pa022.yaml",
    "anssi_ssh": "anssi-ssh.yaml",
    "anssi_tls": "anssi-tls.yaml",
    "anssi_logging": "anssi-logging.yaml",
    "pgssi_s": "pgssi-s.yaml",
    "cnil": "cnil.yaml",
}

# ANSSI BP-028 hardening levels, each including the ones before it.
ANSSI_LEVELS = ("minimal", "intermediary", "enhanced", "high")


@dataclass(frozen=True)
class Framework:
    """One framework: its identifiers in document order, with their attributes (title, level...)."""

    name: str
    title: str
    version: str
    ids: dict[str, dict[str, Any]]

    def title_of(self, ident: str) -> str:
        """Title of an identifier, ``""`` when the reference material gives none."""
        return str(self.ids.get(ident, {}).get("title", ""))


@cache
def frameworks() -> dict[str, Framework]:
    """Every framework, by the name of its References field."""
    folder = resources.files("hds_compliance.catalog") / "frameworks"
    out = {}
    for field, filename in FRAMEWORK_FILES.items():
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        data = yaml.load((folder / filename).read_text(encoding="utf-8"), Loader=loader)
        ids = {str(k): dict(v or {}) for k, v in data["ids"].items()}
        out[field] = Framework(field, str(data["title"]), str(data.get("version", "")), ids)
    return out


def check_ids(field: str, values: list[str]) -> list[str]:
    """``values`` if every identifier exists in the framework, else a ValueError naming the unknown ones."""
    known = frameworks()[field]
    unknown = [v for v in values if v not in known.ids]
    if unknown:
        sample = ", ".join(list(known.ids)[:3])
        raise ValueError(
            f"{', '.join(repr(u) for u in unknown)} not in {known.title} "
            f"({len(known.ids)} identifiers, e.g. {sample})"
        )
    return values


def anssi_level(rec: str) -> str:
    """Lowest BP-028 hardening level of a recommendation (``R31`` -> ``minimal``)."""
    return str(frameworks()["anssi_bp028"].ids[rec]["level"])
