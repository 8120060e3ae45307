"""What a bundle keeps of the catalogue and of the code, so its verdicts can be judged again offline.

The catalogue snapshot is every file the catalogue was read from (the catalogue folder and a team's extra
controls, byte for byte, under their relative names) and the effective values: the profile, the check
tags left out, and each parameter's value with who set it. Loading the snapshot gives the same catalogue,
digest included. The code digest covers what turns captures into verdicts: the checks, the fact parsers,
the evaluator, the catalogue's loader and models, and the redaction patterns.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import hds_compliance
from hds_compliance.catalog import Catalog, load_catalog
from hds_compliance.catalog.load import catalogue_files
from hds_compliance.check import Check

CONTROLS = "catalog/controls/"
EXTRA = "catalog/extra/"
EFFECTIVE = "catalog/effective.json"
CODE = "catalog/code.json"
# The package's parts that decide a verdict from captures (paths relative to the package).
_CODE_PARTS = ("check.py", "model.py", "checks", "facts", "evaluate", "catalog", "evidence/redact.py")


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def code_files() -> dict[str, str]:
    """path (``hds_compliance/...``) -> SHA-256 of each source file that decides verdicts, sorted."""
    package = Path(hds_compliance.__file__).parent
    files: dict[str, str] = {}
    for part in _CODE_PARTS:
        root = package / part
        for path in sorted(root.rglob("*.py")) if root.is_dir() else [root]:
            rel = "hds_compliance/" + path.relative_to(package).as_posix()
            files[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return dict(sorted(files.items()))


def code_digest(files: Mapping[str, str] | None = None) -> str:
    """One SHA-256 over the code files' names and digests."""
    files = code_files() if files is None else files
    text = "".join(f"{name}\0{digest}\n" for name, digest in sorted(files.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def snapshot(catalog: Catalog, directory: Path, extra: Sequence[Path] = ()) -> dict[str, bytes]:
    """The bundle's files for a catalogue read from ``directory`` and ``extra`` (as :func:`load_catalog`
    was given them): bundle path -> bytes."""
    out: dict[str, bytes] = {}
    for path in (p for files in catalogue_files(directory) for p in files):
        out[CONTROLS + path.relative_to(directory).as_posix()] = path.read_bytes()
    extras = []
    for number, root in enumerate(extra, 1):
        base = f"{EXTRA}{number}"
        if root.is_dir():
            for path in (p for files in catalogue_files(root) for p in files):
                out[f"{base}/{path.relative_to(root).as_posix()}"] = path.read_bytes()
            extras.append(base)
        else:
            out[f"{base}/{root.name}"] = root.read_bytes()
            extras.append(f"{base}/{root.name}")
    out[EFFECTIVE] = _json(
        {
            "digest": catalog.digest,
            "profile": catalog.profile,
            "exclude_tags": catalog.exclude_tags,
            "parameters": {name: value.model_dump() for name, value in catalog.parameters.items()},
            "extra": extras,
        }
    )
    files = code_files()
    out[CODE] = _json({"digest": code_digest(files), "files": files})
    return out


def load_snapshot(files: Mapping[str, bytes], checks: dict[str, Check[Any]] | None = None) -> Catalog:
    """The catalogue a snapshot describes (its files written to a temporary folder and loaded as the run
    loaded them); :class:`~hds_compliance.errors.InputError` if they do not load."""
    effective = json.loads(files[EFFECTIVE])
    with tempfile.TemporaryDirectory(prefix="hds-snapshot-") as tmp:
        root = Path(tmp)
        for name, data in files.items():
            if name.startswith((CONTROLS, EXTRA)):
                target = root / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        (root / CONTROLS).mkdir(parents=True, exist_ok=True)
        return load_catalog(
            root / CONTROLS,
            checks,
            profile=effective["profile"],
            overrides={name: p["value"] for name, p in effective["parameters"].items()},
            skip_tags=list(effective["exclude_tags"]),
            extra=[root / path for path in effective["extra"]],
        )
