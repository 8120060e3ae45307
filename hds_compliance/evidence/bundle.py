"""Evidence bundles: what a certifier receives instead of access to the hosts.

A bundle is a directory and the same files in a deterministic ``.tar.gz`` beside it::

    run.json                           the run record, the hosts' folders; what was collected (inventory
                                       digest, each host's transport and raw stream digest, where secrets
                                       were redacted) apart from what judged it (tool, catalogue and code
                                       digests, gate settings, waiver and attestation files' digests)
    hosts/0001-<name>/captures.json    per host: its record and the captures its checks read (redacted)
                                       and its table of the commands they ran (see HostRecord.commands)
    hosts/0001-<name>/verdicts.json    per host: its verdicts
    junit.xml                          the JUnit report of those verdicts
    report.html                        the HTML report (self-contained, for people)
    oscal-assessment-results.json      the same verdicts as OSCAL assessment results
    waivers.json                       the waivers applied (when there were any)
    attestations.json                  the attestations applied, with their documents' SHA-256
    documents/<sha256>/<name>          those documents (unless --no-documents)
    catalog/...                        the catalogue snapshot and the code digest (evidence.snapshot)
    manifest.json                      an in-toto Statement: every other file, its SHA-256 and size
    manifest.dsse.json                 that Statement signed with Ed25519 in a DSSE envelope

Determinism: the same captures, catalogue and key give the same bytes, archive included (sorted entries,
fixed owners, modes and mtimes, a gzip header without time or name; Ed25519 signs deterministically).
Files are readable by their owner only: they hold production hosts' configuration. A bundle is written
under a temporary name and renamed when whole. A scan interrupted (SIGINT, SIGTERM) bundles the hosts it
had probed, signed and marked incomplete (an ``INCOMPLETE`` file, ``"incomplete": true``): ``verify``
reports it as such.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel

from hds_compliance.evidence.signing import envelope, fingerprint
from hds_compliance.model import Attestation, Document, HostRecord, RunRecord, ScanResult, Verdict, Waiver

BUNDLE_FORMAT = 1
PREFIX = "hds-evidence/"  # the archive's one top folder: the same bytes whatever the bundle is called
MANIFEST = "manifest.json"
ENVELOPE = "manifest.dsse.json"
RUN = "run.json"
JUNIT = "junit.xml"
HTML = "report.html"
OSCAL = "oscal-assessment-results.json"
INCOMPLETE = "INCOMPLETE"
WAIVERS = "waivers.json"
ATTESTATIONS = "attestations.json"
DOCUMENTS = "documents/"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "urn:hds-compliance:evidence-manifest:v1"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_M = TypeVar("_M", bound=BaseModel)


class BundleError(Exception):
    """A bundle that cannot be read at all (no such path, not a bundle): exit 2."""


def host_folder(number: int, name: str) -> str:
    """A host's folder in the bundle: its position (names are unique, paths must be too) and its name
    with anything but letters, digits, ``.``, ``_`` and ``-`` replaced."""
    safe = _SAFE.sub("_", name).lstrip(".")[:60] or "_"
    return f"hosts/{number:04d}-{safe}"


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def bundle_files(
    result: ScanResult,
    host_json: Callable[[HostRecord], str],
    junit: str,
    catalogue: Mapping[str, bytes],
    gate: Mapping[str, Any],
    documents: Mapping[str, bytes] | None = None,
    html: str | None = None,
    oscal: str | None = None,
    incomplete: bool = False,
    signer: str = "",
) -> dict[str, bytes]:
    """The files of a bundle but its manifest and signature: bundle path -> bytes. ``documents``: the
    attested documents' bytes by SHA-256 (``None``: left out, their digests only)."""
    from hds_compliance.report import VERDICTS

    by_host: dict[str, list[Verdict]] = {host.name: [] for host in result.hosts}
    for verdict in result.verdicts:
        by_host[verdict.host].append(verdict)
    files: dict[str, bytes] = dict(catalogue)
    hosts, probes, redactions = [], [], []
    for number, host in enumerate(result.hosts, 1):
        folder = host_folder(number, host.name)
        hosts.append({"name": host.name, "folder": folder})
        text = host_json(host).strip() + "\n"
        files[f"{folder}/captures.json"] = text.encode("utf-8")
        record = json.loads(text)
        probes.append({"name": host.name, "connector": record["connector"], **record["probe"]})
        redactions += [  # where the redaction pass removed something, and what kinds
            {"host": host.name, "fact": c["fact"], "kinds": c["redactions"]}
            for c in record["captures"]
            if c.get("redactions")
        ]
        files[f"{folder}/verdicts.json"] = VERDICTS.dump_json(by_host[host.name], indent=2) + b"\n"
    run = result.run
    files[RUN] = _json(
        {
            "bundle_format": BUNDLE_FORMAT,
            "schema_version": result.schema_version,
            "incomplete": incomplete,
            "run": run.model_dump(mode="json"),
            "hosts": hosts,
            # what was collected, and how: it does not change when the same captures are judged again
            "collection": {
                "inventory": run.inventory,
                "inventory_sha256": run.inventory_sha256,
                "started_at": run.started_at,
                "finished_at": run.finished_at,
                "hosts": probes,  # each host's transport, probe record and raw stream's SHA-256
                "redactions": redactions,
            },
            # what judged it
            "signer": signer,
            "evaluation": {
                "tool_version": run.tool_version,
                "catalog_digest": run.catalog_digest,
                "profile": run.profile,
                "code_digest": json.loads(catalogue["catalog/code.json"])["digest"],
                "gate": dict(gate),
                "documents": "omitted" if documents is None else "included",
            },
        }
    )
    files[JUNIT] = junit.encode("utf-8")
    if html is not None:
        files[HTML] = html.encode("utf-8")
    if oscal is not None:
        files[OSCAL] = oscal.encode("utf-8")
    if incomplete:
        files[INCOMPLETE] = b"The scan was interrupted: this bundle holds only the hosts probed before.\n"
    if result.waivers:
        files[WAIVERS] = _json([w.model_dump(mode="json") for w in result.waivers])
    if result.attestations:
        files[ATTESTATIONS] = _json([a.model_dump(mode="json") for a in result.attestations])
    if documents is not None:
        for doc in (d for a in result.attestations for d in a.documents):
            files[document_path(doc)] = documents[doc.sha256]
    return files


def document_path(doc: Document) -> str:
    """Where an attested document lies in a bundle: under its digest, with its own name."""
    return f"{DOCUMENTS}{doc.sha256}/{_SAFE.sub('_', PurePosixPath(doc.path).name) or '_'}"


def statement(files: Mapping[str, bytes], keyid: str, run: RunRecord) -> bytes:
    """The manifest: an in-toto Statement whose subjects are the bundle's files (name and SHA-256), its
    predicate their sizes, the signing key's fingerprint and what the run was."""
    subjects = [
        {"digest": {"sha256": hashlib.sha256(data).hexdigest()}, "name": name}
        for name, data in sorted(files.items())
    ]
    return _json(
        {
            "_type": STATEMENT_TYPE,
            "subject": subjects,
            "predicateType": PREDICATE_TYPE,
            "predicate": {
                "bundle_format": BUNDLE_FORMAT,
                "sizes": {name: len(data) for name, data in sorted(files.items())},
                "signer": keyid,
                "tool_version": run.tool_version,
                "started_at": run.started_at,
                "catalog_digest": run.catalog_digest,
            },
        }
    )


def signed(files: Mapping[str, bytes], key: Ed25519PrivateKey, run: RunRecord) -> dict[str, bytes]:
    """The bundle's files with their manifest and its signed envelope."""
    manifest = statement(files, fingerprint(key.public_key()), run)
    return {**files, MANIFEST: manifest, ENVELOPE: envelope(manifest, key)}


def _mtime(run: RunRecord) -> int:
    """The archive's one mtime: the run's start (so that the same captures give the same bytes)."""
    try:
        return int(datetime.fromisoformat(run.started_at.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


def write_archive(target: Path, files: Mapping[str, bytes], mtime: int) -> None:
    """The deterministic ``.tar.gz`` of ``files``, written to ``target`` (owner-only)."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with (
        os.fdopen(fd, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name in sorted(files):
            info = tarfile.TarInfo(PREFIX + name)
            info.size, info.mtime, info.mode = len(files[name]), mtime, 0o600
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(files[name]))


def archive_path(path: Path) -> Path:
    """Where the archive of the bundle folder ``path`` goes: beside it, ``<name>.tar.gz``."""
    return path.with_name(path.name + ".tar.gz")


def write_bundle(path: Path, files: Mapping[str, bytes], run: RunRecord) -> tuple[Path, Path]:
    """Write the bundle folder ``path`` and its archive, each under a temporary name renamed when whole.

    An existing bundle there is replaced; anything else there is refused (:class:`FileExistsError`):
    a folder that is not a bundle is never deleted."""
    parent = path.parent
    parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not _replaceable(path):
        raise FileExistsError(f"{path} exists and is not an evidence bundle: not replaced")
    tag = f"{os.getpid()}"
    staging = parent / f".{path.name}.partial-{tag}"
    archive, archive_tmp = archive_path(path), parent / f".{path.name}.tar.gz.partial-{tag}"
    old = parent / f".{path.name}.old-{tag}"
    try:
        staging.mkdir(mode=0o700)
        for name, data in files.items():
            target = staging / name
            for folder in reversed(PurePosixPath(name).parents[:-1]):  # owner-only at every level
                (staging / folder).mkdir(mode=0o700, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        write_archive(archive_tmp, files, _mtime(run))
        if path.exists():
            path.rename(old)
        staging.rename(path)
        os.replace(archive_tmp, archive)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
        archive_tmp.unlink(missing_ok=True)
    return path, archive


def _replaceable(path: Path) -> bool:
    if not path.is_dir() or path.is_symlink():
        return False
    return not any(path.iterdir()) or (path / MANIFEST).is_file() or (path / INCOMPLETE).is_file()


# ------------------------------------------------------------------------------------------------ reading


@dataclass
class Bundle:
    """A bundle as read: its files (bundle path -> bytes), and what was wrong with its form."""

    source: str
    files: dict[str, bytes]
    problems: list[str] = field(default_factory=list)


def _safe_name(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return bool(parts) and not name.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def read_bundle(path: Path) -> Bundle:
    """A bundle folder or archive; :class:`BundleError` if ``path`` is neither."""
    if path.is_dir():
        return _read_folder(path)
    if path.is_file():
        return _read_archive(path)
    raise BundleError(f"{path}: no such bundle (a bundle folder or its .tar.gz)")


def _read_folder(path: Path) -> Bundle:
    bundle = Bundle(str(path), {})
    for root, dirs, names in os.walk(path):
        dirs.sort()
        for name in sorted(names) + [d for d in dirs if (Path(root) / d).is_symlink()]:
            full = Path(root) / name
            rel = full.relative_to(path).as_posix()
            if full.is_symlink() or not full.is_file():
                bundle.problems.append(
                    f"{rel}: not a regular file (a link or a device): not part of a bundle"
                )
                continue
            try:
                bundle.files[rel] = full.read_bytes()
            except OSError as exc:
                bundle.problems.append(f"{rel}: cannot be read ({exc.strerror or exc})")
    if not bundle.files:
        raise BundleError(f"{path}: an empty folder, not a bundle")
    return bundle


def _read_archive(path: Path) -> Bundle:
    bundle = Bundle(str(path), {})
    with path.open("rb") as head:
        if head.read(2) != b"\x1f\x8b":  # not gzip at all: another file given by mistake, not a bundle
            raise BundleError(f"{path}: not a bundle (neither its folder nor its .tar.gz)")
    try:
        with gzip.open(path) as gz, tarfile.open(fileobj=gz, mode="r|") as tar:
            for member in _members(tar, bundle):
                handle = tar.extractfile(member)
                if handle is not None:
                    bundle.files[member.name[len(PREFIX) :]] = handle.read()
            # to the end of the gzip stream, past the tar's last block: only there is its CRC checked, and a
            # change in the padding tar never reads would go unseen
            while gz.read(1 << 20):
                pass
    except tarfile.ReadError as exc:
        if not bundle.files and not bundle.problems:
            raise BundleError(f"{path}: not a bundle archive (a .tar.gz): {exc}") from exc
        bundle.problems.append(f"the archive is damaged: {exc}")
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        bundle.problems.append(f"the archive is damaged: {exc}")
    return bundle


def _members(tar: tarfile.TarFile, bundle: Bundle) -> Iterator[tarfile.TarInfo]:
    """The archive's regular files under the bundle's top folder; anything else is a problem."""
    for member in tar:
        name = member.name
        if not name.startswith(PREFIX) or not _safe_name(name[len(PREFIX) :]):
            bundle.problems.append(
                f"archive member {name!r}: outside the bundle's folder: not part of a bundle"
            )
        elif not member.isreg():
            bundle.problems.append(f"{name[len(PREFIX) :]}: not a regular file (a link or a device)")
        elif name[len(PREFIX) :] in bundle.files:
            bundle.problems.append(f"{name[len(PREFIX) :]}: twice in the archive")
        else:
            yield member


def result_of(files: Mapping[str, bytes], verdicts: bool = True) -> tuple[ScanResult, dict[str, Any]]:
    """The scan result a bundle holds (hosts with their captures, verdicts in host order unless
    ``verdicts`` is false) and its run.json; ``ValueError`` (or pydantic's ``ValidationError``) naming the
    file that does not parse."""
    with _naming(RUN):
        run = json.loads(files[RUN])
    from hds_compliance.report import VERDICTS

    hosts: list[HostRecord] = []
    judged: list[Verdict] = []
    for entry in run["hosts"]:
        folder = entry["folder"]
        with _naming(f"{folder}/captures.json"):
            hosts.append(HostRecord.model_validate_json(files[f"{folder}/captures.json"]))
        if verdicts:
            with _naming(f"{folder}/verdicts.json"):
                judged += VERDICTS.validate_json(files[f"{folder}/verdicts.json"])
    record = RunRecord.model_validate(run["run"])
    result = ScanResult(schema_version=run["schema_version"], run=record, hosts=hosts, verdicts=judged)
    result.waivers = _listed(files, WAIVERS, Waiver)
    result.attestations = _listed(files, ATTESTATIONS, Attestation)
    return result, run


def _listed(files: Mapping[str, bytes], name: str, model: type[_M]) -> list[_M]:
    """The models a bundle's JSON list file holds (none if the bundle has no such file)."""
    if name not in files:
        return []
    with _naming(name):
        return [model.model_validate(item) for item in json.loads(files[name])]


@contextlib.contextmanager
def _naming(name: str) -> Iterator[None]:
    try:
        yield
    except KeyError as exc:
        raise ValueError(f"{name}: missing") from exc
    except ValueError as exc:  # pydantic's ValidationError is one
        raise ValueError(f"{name}: {str(exc).splitlines()[0]}") from exc
