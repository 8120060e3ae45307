"""Command line: ``hds-compliance scan | evaluate | coverage | lint | catalog | profiles | checks | schema``.

Thin: parse, call, print.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import signal
import sys
import traceback
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from hds_compliance import __version__, console
from hds_compliance.catalog import Catalog, lint_catalog, load_catalog, profiles, schema_json
from hds_compliance.check import registry
from hds_compliance.errors import InputError, Problem
from hds_compliance.gate import (
    EXIT_CODES,
    EXIT_FAILED,
    EXIT_INVALID_INPUT,
    EXIT_OUTPUT,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    GateResult,
    gate,
)
from hds_compliance.model import Attestation, HostRecord, ScanResult, Severity, Waiver
from hds_compliance.report import HostSpool, printable
from hds_compliance.waivers import apply_waivers

if TYPE_CHECKING:
    from hds_compliance.inventory import Host, Inventory


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_INVALID_INPUT, f"{self.prog}: error: {message}\n")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="hds-compliance",
        description="HDS (Hébergeur de Données de Santé) compliance as code: YAML controls, one read-only "
        "probe per host over pyinfra, JUnit and JSON results.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"hds-compliance {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    source = _Parser(add_help=False)  # where the catalogue is read from
    source.add_argument(
        "--controls",
        type=Path,
        help="folder of control YAML files (default: the catalogue shipped with hds-compliance)",
    )
    source.add_argument(
        "--extra-controls",
        dest="extra",
        action="append",
        default=[],
        type=Path,
        metavar="PATH",
        help="a team's own control file or folder, read on top of the catalogue (repeatable)",
    )
    catalogue = _Parser(add_help=False, parents=[source])  # what every command reading the catalogue shares
    catalogue.add_argument(
        "--profile",
        help="profile: which controls and parameter values (full, minimal, anssi-intermediary...)",
    )
    catalogue.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a catalogue parameter (e.g. password_min_length=14); repeatable, wins over everything",
    )
    catalogue.add_argument(
        "--parameters",
        dest="parameter_files",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="YAML file of parameter values (name: value); repeatable",
    )
    catalogue.add_argument(
        "--skip-tag",
        dest="skip_tags",
        action="append",
        default=[],
        metavar="TAG",
        help="leave out checks with this tag (fs-walk: file-system walks); they are reported not_reviewed",
    )
    outputs = _Parser(add_help=False, parents=[catalogue])  # what scan and evaluate share
    outputs.add_argument(
        "--junit", type=Path, metavar="PATH", help="write JUnit XML here ('-': standard output)"
    )
    outputs.add_argument(
        "--json",
        type=Path,
        metavar="PATH",
        help="write JSON results (with captures) here ('-': standard output)",
    )
    outputs.add_argument(
        "--fail-on",
        default="low",
        choices=[s.value for s in Severity],
        help="lowest severity whose failures fail the gate (default: low); errors always fail it",
    )
    outputs.add_argument(
        "--markdown",
        type=Path,
        metavar="PATH",
        help="write a Markdown summary here (a CI job summary; '-': stdout)",
    )
    outputs.add_argument(
        "--html",
        type=Path,
        metavar="PATH",
        help="write the HTML report here: one self-contained page, readable offline ('-': stdout)",
    )
    outputs.add_argument(
        "--oscal",
        type=Path,
        metavar="PATH",
        help="write OSCAL assessment results (JSON) here ('-': stdout)",
    )
    outputs.add_argument(
        "--thresholds",
        type=Path,
        metavar="FILE",
        help="YAML gate policy: max_failures per severity, min_compliance (percent), must_pass controls",
    )
    outputs.add_argument(
        "--baseline",
        type=Path,
        metavar="RESULTS",
        help="an earlier run's JSON results: fail only on regressions (errors and missing hosts always fail)",
    )
    outputs.add_argument(
        "--waivers",
        type=Path,
        metavar="FILE",
        help="YAML waivers: risks accepted on failing results (approver, expiry); a waived result keeps its "
        "verdict and does not fail the gate while its waiver holds",
    )
    outputs.add_argument(
        "--attestations",
        type=Path,
        metavar="FILE",
        help="YAML attestations: what people state, with documents, for controls no check can prove",
    )
    outputs.add_argument(
        "--no-documents",
        action="store_true",
        help="keep the attested documents out of the bundle (their SHA-256 stays in it)",
    )
    outputs.add_argument(
        "--bundle",
        type=Path,
        metavar="PATH",
        help="write a signed evidence bundle: the folder PATH and PATH.tar.gz (needs --sign-key)",
    )
    outputs.add_argument(
        "--sign-key", type=Path, metavar="KEY", help="Ed25519 private key the bundle is signed with (keygen)"
    )
    outputs.add_argument("-q", "--quiet", action="store_true", help="print only the final line")

    def gated(name: str, text: str) -> argparse.ArgumentParser:
        """A command that writes outputs and gates, with the exit-code table in its help."""
        return sub.add_parser(
            name,
            parents=[outputs],
            help=text,
            epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    scan = gated("scan", "scan the hosts of an inventory (default: this machine)")
    scan.add_argument(
        "-i", "--inventory", type=Path, help="pyinfra inventory file (default: this machine, @local)"
    )
    scan.add_argument(
        "--limit",
        action="append",
        metavar="PATTERN",
        help="only scan these hosts: a host or group name, or a glob over them (db*); repeatable, or a,b",
    )
    scan.add_argument(
        "--shard",
        metavar="K/N",
        help="scan part K of N of the inventory (a stable split by host name, for CI matrices; see merge)",
    )
    scan.add_argument("--connect-timeout", type=float, default=10.0, help="seconds to connect (default: 10)")
    scan.add_argument(
        "--timeout", type=float, default=120.0, help="seconds for the probe of one host (default: 120)"
    )
    scan.add_argument(
        "--parallel", type=int, default=50, help="hosts connected and probed at once (default: 50)"
    )
    for name, text in (
        ("evaluate", "re-evaluate the captures of a JSON result offline, without contacting any host"),
        ("report", "write reports (Markdown, JUnit, JSON) of a JSON result as it was judged, and gate it"),
    ):
        command = gated(name, text)
        if name == "evaluate":
            command.add_argument(
                "--force",
                action="store_true",
                help="judge results of another catalogue, check code or schema (recorded in run.forced)",
            )
        command.add_argument(
            "results", type=Path, help="JSON results written by scan --json, or an evidence bundle (--bundle)"
        )
    merge = gated(
        "merge", "merge the results of scan --shard 1/N..N/N into one run, fleet checks judged over all hosts"
    )
    merge.add_argument(
        "shards", type=Path, nargs="+", help="JSON results or bundles of every shard of one scan"
    )
    merge.add_argument("-o", "--output", dest="json", type=Path, metavar="PATH", help="same as --json")

    keygen = sub.add_parser(
        "keygen", help="write an Ed25519 key pair for signing bundles: DIR/signing.{key,pub}"
    )
    keygen.add_argument("directory", type=Path, metavar="DIR")
    verify = sub.add_parser(
        "verify",
        help="check an evidence bundle offline: signature, every file, and every verdict judged again",
        epilog="exit codes: 0 everything holds; 1 a problem (each one named); 2 unreadable input",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verify.add_argument("verified", type=Path, metavar="BUNDLE", help="the bundle folder or its .tar.gz")
    verify.add_argument("--key", type=Path, required=True, help="the signer's public key (signing.pub)")
    verify.add_argument(
        "--reports",
        action="store_true",
        help="also make the JUnit, HTML and OSCAL reports again and compare them byte for byte",
    )
    verify.add_argument(
        "--force",
        action="store_true",
        help="judge the verdicts again even if the check code is not this tool's",
    )

    sub.add_parser(
        "lint", parents=[source], help="validate a catalogue and its profiles; exit 2 with file:line: field"
    )

    coverage = sub.add_parser(
        "coverage",
        parents=[catalogue],
        help="each HDS requirement (EXI 01..31) and framework reference: which controls answer it, and how",
    )
    coverage.add_argument("--format", choices=["text", "json", "markdown"], default="text")
    coverage.add_argument(
        "--attestations", type=Path, metavar="FILE", help="count the document controls attested today"
    )

    catalog = sub.add_parser(
        "catalog", parents=[catalogue], help="print the controls with references and checks"
    )
    catalog.add_argument("--format", choices=["json", "text"], default="text")

    sub.add_parser("profiles", parents=[source], help="list the profiles of the catalogue")

    sub.add_parser("checks", help="list the registered checks and the facts they read")
    sub.add_parser("schema", help="print the JSON Schema of a control file (for editors)")
    return parser


def _overrides(values: list[str]) -> dict[str, str]:
    out = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InputError([Problem("--set", None, item, "expected NAME=VALUE")])
        out[name.strip()] = value.strip()
    return out


def _load(args: argparse.Namespace, profile: str | None = None) -> Catalog:
    return load_catalog(
        args.controls,
        profile=getattr(args, "profile", None) or profile,
        parameter_files=getattr(args, "parameter_files", []),
        overrides=_overrides(getattr(args, "overrides", [])),
        skip_tags=getattr(args, "skip_tags", []),
        extra=args.extra,
    )


def _cmd_scan(args: argparse.Namespace) -> int:
    from hds_compliance.collect import CollectOptions
    from hds_compliance.inventory import default_inventory, load_inventory, select_hosts
    from hds_compliance.scan import scan, utc_now
    from hds_compliance.shard import Shard

    problems: list[Problem] = []
    shard = None
    try:
        shard = Shard.parse(args.shard) if args.shard else None
    except InputError as exc:
        problems += exc.problems
    try:  # the catalogue's and the inventory's problems are reported together
        catalog = _load(args)
    except InputError as exc:
        problems += exc.problems
    try:
        inventory = load_inventory(args.inventory or default_inventory())
    except InputError as exc:
        problems += exc.problems
    if problems:
        raise InputError(problems)
    _judgements(args, catalog)  # wrong waivers or attestations stop the scan before any host is contacted
    outside: list[Host] = []
    if args.limit:
        inventory.hosts, outside = select_hosts(inventory, args.limit)
    if shard is not None:
        outside += [h for h in inventory.hosts if not shard.holds(h.name)]
        inventory.hosts = [h for h in inventory.hosts if shard.holds(h.name)]
    if args.parallel < 1 or args.timeout <= 0 or args.connect_timeout <= 0:
        print("hds-compliance: --parallel must be at least 1, timeouts above 0", file=sys.stderr)
        return EXIT_INVALID_INPUT
    options = CollectOptions(
        connect_timeout=args.connect_timeout, command_timeout=args.timeout, parallel=args.parallel
    )
    part = str(shard) if shard else None
    # Captures go to the JSON results and the bundle only: written out host by host (or dropped), not kept
    # in memory.
    spool = HostSpool() if args.json or args.bundle or args.html else None
    started = utc_now()
    try:
        with console.progress(sys.stderr, 0 if args.quiet else len(inventory.hosts)) as tick:
            result = scan(
                catalog,
                registry(),
                inventory,
                options,
                outside=outside,
                shard=part,
                progress=tick,
                captures=spool.add if spool else _drop,
            )
        return _report(result, catalog, args, spool)
    except (KeyboardInterrupt, _Interrupted):
        if args.bundle and spool is not None:
            _bundle_interrupted(catalog, inventory, outside, part, spool, args, started)
        raise
    finally:
        if spool is not None:
            spool.close()


def _bundle_interrupted(
    catalog: Catalog,
    inventory: Inventory,
    outside: list[Host],
    shard: str | None,
    spool: HostSpool,
    args: argparse.Namespace,
    started: str,
) -> None:
    """The bundle of an interrupted scan: the hosts probed before the signal, judged from their captures
    (the others are outside it, so fleet checks that need them say so), signed, marked incomplete."""
    from hds_compliance.evaluate import evaluate
    from hds_compliance.evidence.snapshot import code_digest
    from hds_compliance.model import RunRecord, Scope
    from hds_compliance.scan import file_sha256, utc_now

    done = [h for h in inventory.hosts if spool.holds(h.name)]
    if not done:
        return
    left = [h for h in [*inventory.hosts, *outside] if not spool.holds(h.name)]
    order = [h.name for h in inventory.hosts] + [h.name for h in outside]
    scope = Scope(
        inventory_hosts=len(order),
        outside={h.name: list(h.info.roles) for h in left},
        shard=shard,
        order=inventory.order or order,
    )
    hosts = [HostRecord.model_validate_json(spool.text(h.name)) for h in done]
    verdicts = evaluate(catalog, registry(), hosts, scope, started)
    run = RunRecord(
        tool_version=__version__,
        started_at=started,
        finished_at=utc_now(),
        inventory=inventory.path,
        catalog_digest=catalog.digest,
        profile=catalog.profile,
        scope=scope,
        inventory_sha256=file_sha256(inventory.path),
        code_digest=code_digest(),
    )
    result = _accepted(ScanResult(run=run, hosts=hosts, verdicts=verdicts), *_judgements(args, catalog))
    thresholds, baseline = args.policy
    outcome = gate(result.verdicts, Severity(args.fail_on), thresholds, baseline)
    _write_bundle(result, catalog, args, outcome, None, incomplete=True)
    _say(
        f"hds-compliance: {len(done)} of {len(inventory.hosts)} host(s) probed before the signal: bundle "
        f"{printable(str(args.bundle))} written, marked incomplete"
    )


def _drop(_record: HostRecord) -> None:
    """Captures nobody asked for."""


def _recorded(args: argparse.Namespace) -> tuple[ScanResult, Catalog]:
    """The results ``args.results`` holds, and the catalogue to judge or report them with: the command's
    catalogue options for a results file, the bundle's own snapshot for a bundle."""
    from hds_compliance.gate import read_results

    path: Path = args.results
    if _is_bundle(path):
        recorded, files = _bundle_input(path)
        catalog = _bundle_catalogue(args, path, _snapshot_of(files))
        args.provenance = _provenance(files)
    else:
        recorded = read_results(path)
        catalog = _load(args, recorded.run.profile)
    if not recorded.hosts:  # nothing to judge: never a pass
        raise InputError([Problem(str(path), None, "hosts", "no hosts: nothing to evaluate")])
    return recorded, catalog


def _is_bundle(path: Path) -> bool:
    return path.is_dir() or path.name.endswith((".tar.gz", ".tgz"))


def _bundle_input(path: Path) -> tuple[ScanResult, dict[str, bytes]]:
    """A bundle's result, and its files but the hosts' (its catalogue snapshot, manifest and envelope);
    exit 2 if it cannot be read whole (``verify`` says why)."""
    from hds_compliance.evidence.bundle import BundleError, read_bundle, result_of

    try:
        bundle = read_bundle(path)
        if bundle.problems:
            raise BundleError(f"{path}: {bundle.problems[0]} (hds-compliance verify checks a bundle)")
        result, _run = result_of(bundle.files)
    except (BundleError, ValueError) as exc:
        raise InputError([Problem(str(path), None, "", str(exc))]) from exc
    return result, {name: data for name, data in bundle.files.items() if not name.startswith("hosts/")}


def _provenance(files: dict[str, bytes]) -> list[tuple[str, str]]:
    """What a report made from a bundle says of it: the manifest's SHA-256 and who signed it (``verify``
    checks them; a report does not)."""
    from hds_compliance.evidence.bundle import MANIFEST

    if MANIFEST not in files:
        return []
    signer = json.loads(files[MANIFEST]).get("predicate", {}).get("signer", "?")
    return [
        ("bundle manifest SHA-256", hashlib.sha256(files[MANIFEST]).hexdigest()),
        ("signed by", str(signer)),
    ]


def _snapshot_of(files: dict[str, bytes]) -> dict[str, bytes]:
    return {name: data for name, data in files.items() if name.startswith("catalog/")}


def _bundle_catalogue(args: argparse.Namespace, path: Path, snapshot: dict[str, bytes]) -> Catalog:
    """The catalogue a bundle carries (the catalogue options are refused with it), kept for a new bundle."""
    from hds_compliance.evidence.snapshot import load_snapshot

    if args.controls or args.extra or args.profile or args.overrides or args.parameter_files:
        why = "a bundle is judged with the catalogue it carries: leave out the catalogue options"
        raise InputError([Problem(str(path), None, "", why)])
    args.catalogue_files = snapshot
    return load_snapshot(snapshot)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from hds_compliance.evaluate import evaluate
    from hds_compliance.evidence.snapshot import code_digest
    from hds_compliance.model import SCHEMA_VERSION

    recorded, catalog = _recorded(args)
    ours = code_digest()
    differs = []
    if recorded.schema_version != SCHEMA_VERSION:
        differs.append(f"schema_version {recorded.schema_version}, this tool writes {SCHEMA_VERSION}")
    if recorded.run.catalog_digest != catalog.digest:
        differs.append(
            f"run.catalog_digest {recorded.run.catalog_digest[:12]}, catalogue given {catalog.digest[:12]}"
        )
    if recorded.run.code_digest is not None and recorded.run.code_digest != ours:
        differs.append(
            f"run.code_digest {recorded.run.code_digest[:12]}, this tool's check code is {ours[:12]}"
        )
    if differs and not args.force:
        why = "judged by another catalogue or code: --force judges them again anyway (and records it)"
        raise InputError([Problem(str(args.results), None, "", f"{d}: {why}") for d in differs])
    update = {"catalog_digest": catalog.digest, "profile": catalog.profile, "code_digest": ours}
    run = recorded.run.model_copy(update=update | {"forced": [*recorded.run.forced, *differs]})
    verdicts = evaluate(catalog, registry(), recorded.hosts, recorded.run.scope, recorded.run.started_at)
    return _report(recorded.model_copy(update={"run": run, "verdicts": verdicts}), catalog, args)


def _cmd_report(args: argparse.Namespace) -> int:
    recorded, catalog = _recorded(args)
    if args.bundle and catalog.digest != recorded.run.catalog_digest:  # the snapshot would not be theirs
        why = (
            f"judged with catalogue {recorded.run.catalog_digest[:12]}, not {catalog.digest[:12]}: "
            "a bundle needs the catalogue options of the run (--controls, --profile, --set, --skip-tag...)"
        )
        raise InputError([Problem(str(args.results), None, "run.catalog_digest", why)])
    return _report(recorded, catalog, args)


def _cmd_merge(args: argparse.Namespace) -> int:
    from hds_compliance.evaluate import evaluate
    from hds_compliance.evidence.bundle import ENVELOPE, MANIFEST
    from hds_compliance.evidence.snapshot import code_digest
    from hds_compliance.gate import read_results
    from hds_compliance.model import RunRecord
    from hds_compliance.shard import merge

    shards: list[tuple[str, ScanResult]] = []
    kept: dict[str, bytes] = {}
    snapshot: dict[str, bytes] | None = None
    for path in args.shards:
        if _is_bundle(path):  # a signed shard: its manifest and signature go into the merged bundle
            result, files = _bundle_input(path)
            part = result.run.scope.shard if result.run.scope else None
            kept |= {
                f"shards/{str(part).replace('/', '-of-')}/{name}": files[name]
                for name in (MANIFEST, ENVELOPE)
            }
            snapshot = snapshot or _snapshot_of(files)
        else:
            result = read_results(path)
        shards.append((str(path), result))
    merged = merge(shards)
    catalog = _bundle_catalogue(args, args.shards[0], snapshot) if snapshot else _load(args, merged.profile)
    if catalog.digest != merged.catalog_digest:
        why = (
            "give merge the catalogue options the shards were scanned with (--controls, --profile, --set...)"
        )
        raise InputError(
            [Problem(str(args.shards[0]), None, "run.catalog_digest", f"not the catalogue given here: {why}")]
        )
    args.shard_files = kept
    verdicts = evaluate(catalog, registry(), merged.hosts, merged.scope, merged.started_at)
    run = RunRecord(
        tool_version=__version__,
        started_at=merged.started_at,
        finished_at=merged.finished_at,
        inventory=merged.inventory,
        catalog_digest=catalog.digest,
        profile=catalog.profile,
        scope=merged.scope,
        code_digest=code_digest(),
    )
    return _report(ScanResult(run=run, hosts=merged.hosts, verdicts=verdicts), catalog, args)


def _report(
    result: ScanResult, catalog: Catalog, args: argparse.Namespace, spool: HostSpool | None = None
) -> int:
    """Write the requested outputs, print the summary, return the gate's exit code.

    An output named ``-`` goes to standard output, and the summary to standard error then.
    """
    from hds_compliance.evaluate.engine import few_collections

    # the outputs make objects by the verdict and keep none: the cyclic collector, at its default pace,
    # would walk a fleet's verdicts again and again meanwhile
    with few_collections():
        return _write_outputs(result, catalog, args, spool)


def _write_outputs(
    result: ScanResult, catalog: Catalog, args: argparse.Namespace, spool: HostSpool | None
) -> int:
    from hds_compliance.junit import junit_chunks
    from hds_compliance.report import STDOUT, console_summary, gate_line, json_chunks, to_markdown, write_text

    result = _accepted(result, *_judgements(args, catalog))
    thresholds, baseline = args.policy
    outcome = gate(result.verdicts, Severity(args.fail_on), thresholds, baseline)
    if args.junit:
        write_text(args.junit, junit_chunks(result, catalog))
    if args.json:
        write_text(args.json, json_chunks(result, spool=spool))
    if args.markdown:
        write_text(args.markdown, to_markdown(result, catalog, outcome))
    if args.oscal:
        from hds_compliance.oscal import to_oscal

        write_text(args.oscal, to_oscal(result, catalog))
    if args.html:
        from hds_compliance.html import to_html

        gated = (outcome.passed, gate_line(outcome))
        page = to_html(_with_captures(result, spool), catalog, gated, getattr(args, "provenance", ()))
        write_text(args.html, page)
    if args.bundle:
        _write_bundle(result, catalog, args, outcome, spool)
    stream = sys.stderr if STDOUT in _outputs(args) else sys.stdout
    console.write(
        stream, gate_line(outcome) + "\n" if args.quiet else console_summary(result, catalog, outcome)
    )
    return outcome.exit_code


def _with_captures(result: ScanResult, spool: HostSpool | None) -> ScanResult:
    """The result with its hosts' captures, read back from the spool a scan wrote them to (the HTML report
    shows them: every host's captures are then in memory at once)."""
    if spool is None:
        return result
    hosts = [HostRecord.model_validate_json(spool.text(host.name)) for host in result.hosts]
    return result.model_copy(update={"hosts": hosts})


def _write_bundle(
    result: ScanResult,
    catalog: Catalog,
    args: argparse.Namespace,
    outcome: GateResult,
    spool: HostSpool | None,
    incomplete: bool = False,
) -> None:
    """The signed evidence bundle of this result (see :mod:`hds_compliance.evidence.bundle`)."""
    from hds_compliance.catalog import default_controls_dir
    from hds_compliance.evidence.bundle import bundle_files, signed, write_bundle
    from hds_compliance.evidence.signing import fingerprint
    from hds_compliance.evidence.snapshot import snapshot
    from hds_compliance.html import to_html
    from hds_compliance.junit import to_junit
    from hds_compliance.oscal import to_oscal
    from hds_compliance.report import OutputError, gate_line, host_json

    key = args.signing_key
    catalogue = getattr(args, "catalogue_files", None) or snapshot(
        catalog, args.controls or default_controls_dir(), args.extra
    )
    given = (
        ("thresholds_sha256", args.thresholds),
        ("baseline_sha256", args.baseline),
        ("waivers_sha256", args.waivers),
        ("attestations_sha256", args.attestations),
    )
    policy = {name: hashlib.sha256(path.read_bytes()).hexdigest() if path else None for name, path in given}
    gate_settings = {
        "fail_on": args.fail_on,
        **policy,
        "exit_code": outcome.exit_code,
        "line": gate_line(outcome),
    }
    signer = fingerprint(key.public_key())
    files = bundle_files(
        result,
        (lambda host: spool.text(host.name)) if spool else host_json,
        to_junit(result, catalog),
        catalogue,
        gate_settings,
        None if args.no_documents else _documents(result, args),
        to_html(
            _with_captures(result, spool),
            catalog,
            (outcome.passed, gate_line(outcome)),
            [("signed by", signer)],
        ),
        to_oscal(result, catalog),
        incomplete,
        signer,
    )
    files |= getattr(args, "shard_files", {})
    try:
        write_bundle(args.bundle, signed(files, key, result.run), result.run)
    except OSError as exc:
        raise OutputError(f"cannot write the bundle {args.bundle}: {exc.strerror or exc}") from exc
    except FileExistsError as exc:
        raise OutputError(str(exc)) from exc


_Judgements = tuple[list[Attestation] | None, list[Waiver] | None]


def _judgements(args: argparse.Namespace, catalog: Catalog) -> _Judgements:
    """The ``--attestations`` and ``--waivers`` files, read once and checked against the catalogue (each
    ``None`` when not given); their problems are reported together."""
    from hds_compliance.attestations import load_attestations
    from hds_compliance.waivers import load_waivers

    if not hasattr(args, "judgements"):
        problems: list[Problem] = []
        attestations = waivers = None
        try:
            if getattr(args, "attestations", None) is not None:
                attestations = load_attestations(args.attestations, catalog)
        except InputError as exc:
            problems += exc.problems
        try:
            if getattr(args, "waivers", None) is not None:
                waivers = load_waivers(args.waivers, [c.id for c in catalog.controls])
        except InputError as exc:
            problems += exc.problems
        if problems:
            raise InputError(problems)
        args.judgements = (attestations, waivers)
    found: _Judgements = args.judgements
    return found


def _accepted(
    result: ScanResult, attestations: list[Attestation] | None, waivers: list[Waiver] | None
) -> ScanResult:
    """The result with what people attested and accepted applied, attestations first (they decide verdicts
    waivers may then cover): those of the files given, else those the results were judged with."""
    from hds_compliance.attestations import apply_attestations

    attestations = result.attestations if attestations is None else attestations
    waivers = result.waivers if waivers is None else waivers
    if not attestations and not waivers:
        return result
    day, hosts = result.run.started_at, result.hosts
    verdicts = apply_attestations(result.verdicts, attestations, hosts, day)
    verdicts = apply_waivers(verdicts, waivers, hosts, day)
    return result.model_copy(update={"verdicts": verdicts, "attestations": attestations, "waivers": waivers})


def _documents(result: ScanResult, args: argparse.Namespace) -> dict[str, bytes] | None:
    """The attested documents' bytes by SHA-256, read again from beside the attestations file (they must
    not have changed since it was read); ``None`` when the attestations came with recorded results."""
    from hds_compliance.report import OutputError

    if not result.attestations:
        return {}
    if args.attestations is None:
        return None
    found = {}
    for doc in (d for a in result.attestations for d in a.documents):
        path = args.attestations.parent / doc.path
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != doc.sha256:
            raise OutputError(f"cannot bundle {path}: it changed since the attestations were read")
        found[doc.sha256] = data
    return found


def _outputs(args: argparse.Namespace) -> list[Path | None]:
    return [getattr(args, name, None) for name in ("junit", "json", "markdown", "html", "oscal")]


def _prepare(args: argparse.Namespace) -> None:
    """What every command checks before any work: at most one output on standard output (two would
    interleave), and the gate policy files readable and valid (before any host is contacted)."""
    from hds_compliance.gate import policy_from
    from hds_compliance.report import STDOUT

    problems = []
    if _outputs(args).count(STDOUT) > 1:
        problems.append(
            Problem(
                "--junit/--json/--markdown/--html", None, "", "only one output can be '-' (standard output)"
            )
        )
    try:
        args.policy = policy_from(getattr(args, "thresholds", None), getattr(args, "baseline", None))
    except InputError as exc:
        problems += exc.problems
    problems += _signing_key(args)
    if problems:
        raise InputError(problems)


def _signing_key(args: argparse.Namespace) -> list[Problem]:
    """Load ``--sign-key`` now, before any host is contacted: a bundle is never written unsigned."""
    from hds_compliance.evidence.signing import KeyFileError, load_private
    from hds_compliance.report import STDOUT

    bundle, key = getattr(args, "bundle", None), getattr(args, "sign_key", None)
    if bundle is None:
        return (
            [] if key is None else [Problem("--sign-key", None, "", "signs a bundle: give --bundle PATH too")]
        )
    if bundle == STDOUT:
        return [Problem("--bundle", None, "", "a bundle is a folder and an archive: give a path, not '-'")]
    if key is None:
        return [
            Problem(
                "--bundle", None, "", "a bundle is always signed: give --sign-key KEY (hds-compliance keygen)"
            )
        ]
    try:
        args.signing_key = load_private(key)
    except KeyFileError as exc:
        return [Problem(str(key), None, "", str(exc).removeprefix(f"{key}: "))]
    return []


def _cmd_keygen(args: argparse.Namespace) -> int:
    from hds_compliance.evidence.signing import fingerprint, keygen, load_public
    from hds_compliance.report import OutputError

    try:
        private, public = keygen(args.directory)
    except FileExistsError as exc:
        raise InputError([Problem(str(args.directory), None, "", str(exc))]) from exc
    except OSError as exc:
        raise OutputError(f"cannot write keys in {args.directory}: {exc.strerror or exc}") from exc
    print(f"private key: {private} (owner only: keep it off the certifier's copy)")
    print(f"public key:  {public} (give it to whoever verifies the bundles)")
    print(f"fingerprint: {fingerprint(load_public(public))}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from hds_compliance.evidence.bundle import BundleError, read_bundle
    from hds_compliance.evidence.signing import KeyFileError, fingerprint, load_public
    from hds_compliance.evidence.verify import verify

    try:
        key = load_public(args.key)
        bundle = read_bundle(args.verified)
    except (KeyFileError, BundleError) as exc:
        raise InputError(
            [Problem(str(exc).split(": ", 1)[0], None, "", str(exc).split(": ", 1)[-1])]
        ) from exc
    found = verify(bundle, key, force=args.force, reports=args.reports)
    for note in found.notes:
        print(f"note: {printable(note)}")
    for problem in found.problems:
        print(f"FAIL {printable(problem)}")
    checked = f"{found.files} files, {found.verdicts} verdicts judged again, key {fingerprint(key)[:16]}..."
    name = printable(str(args.verified))
    if found.problems:
        print(f"bundle {name}: NOT VERIFIED ({len(found.problems)} problems; {checked})")
        return EXIT_FAILED
    print(f"bundle {name}: verified ({checked})")
    return 0


def _cmd_lint(args: argparse.Namespace) -> int:
    from hds_compliance.catalog.coverage import coverage

    catalog = lint_catalog(args.controls, extra=args.extra)
    refs = [(r.id, json.dumps(r.params, sort_keys=True)) for c in catalog.controls for r in c.checks]
    distinct = set(refs)
    per_check = Counter(check_id for check_id, _ in distinct)
    manual = sum(1 for c in catalog.controls if not c.checks)
    print(
        f"ok: {len(catalog.controls)} controls, {len(refs)} check references "
        f"({len(distinct)} distinct check+parameters over {len(per_check)} checks), {manual} without checks"
    )
    if per_check:
        top, count = per_check.most_common(1)[0]
        print(f"most used check: {top}, {count} of {len(distinct)} distinct references")
    hds = coverage(catalog)["hds"]
    statuses = Counter(r.status for r in hds)
    print(
        "HDS v2: "
        + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
        + f" of {len(hds)} requirements"
    )
    return 0


def _cmd_coverage(args: argparse.Namespace) -> int:
    from hds_compliance.catalog import coverage

    catalog = _load(args)
    attested: frozenset[str] = frozenset()
    if args.attestations is not None:  # those that hold today and say satisfied
        from datetime import UTC, datetime

        from hds_compliance.attestations import load_attestations

        today = datetime.now(UTC).date()
        found = load_attestations(args.attestations, catalog)
        attested = frozenset(a.control for a in found if a.status == "satisfied" and a.holds_on(today))
    if args.format == "json":
        print(json.dumps(coverage.to_json(catalog, attested), indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(coverage.render(catalog, markdown=args.format == "markdown", attested=attested))
    return 0


def _cmd_profiles(args: argparse.Namespace) -> int:
    for profile in profiles(args.controls, extra=args.extra):
        base = f" (extends {profile.extends})" if profile.extends else ""
        print(f"{profile.id:22s} {profile.title}{base}")
    return 0


def _cmd_catalog(args: argparse.Namespace) -> int:
    catalog = _load(args)
    if args.format == "json":
        print(json.dumps(catalog.export(), indent=2, ensure_ascii=False))
        return 0
    for c in catalog.controls:
        refs = "; ".join(f"{k} {', '.join(v)}" for k, v in c.references.items())
        print(f"{c.id}  [{c.severity.value}] {c.title}")
        print(f"        {c.automation}: {', '.join(r.id for r in c.checks) or 'attestation / manual review'}")
        if refs:
            print(f"        {refs}")
    return 0


def _cmd_checks(_args: argparse.Namespace) -> int:
    for check_id, spec in registry().items():
        print(f"{check_id:45s} {spec.summary}")
    return 0


def _cmd_schema(_args: argparse.Namespace) -> int:
    sys.stdout.write(schema_json())
    return 0


_COMMANDS = {
    "coverage": _cmd_coverage,
    "profiles": _cmd_profiles,
    "evaluate": _cmd_evaluate,
    "report": _cmd_report,
    "merge": _cmd_merge,
    "scan": _cmd_scan,
    "lint": _cmd_lint,
    "catalog": _cmd_catalog,
    "checks": _cmd_checks,
    "schema": _cmd_schema,
    "keygen": _cmd_keygen,
    "verify": _cmd_verify,
}


class _Interrupted(BaseException):
    """SIGTERM, raised where the process is (as Python raises KeyboardInterrupt for SIGINT)."""


def _on_sigterm(_signum: int, _frame: object) -> None:
    raise _Interrupted


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hds-compliance`` command: the exit code is always one of the documented ones."""
    from hds_compliance.report import OutputError

    args = _build_parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        _prepare(args)
        return _COMMANDS[args.command](args)
    except InputError as exc:
        for problem in exc.problems:
            _say(f"error: {problem}")
        return EXIT_INVALID_INPUT
    except OutputError as exc:
        _say(f"hds-compliance: {exc}")
        return EXIT_OUTPUT
    except BrokenPipeError:
        _say("hds-compliance: cannot write standard output: the reading end of the pipe was closed")
        return EXIT_OUTPUT
    except KeyboardInterrupt:
        _say("hds-compliance: interrupted (SIGINT): stopped, no output written")
        return EXIT_SIGINT
    except _Interrupted:
        _say("hds-compliance: interrupted (SIGTERM): stopped, no output written")
        return EXIT_SIGTERM
    except Exception:  # a bug of ours: never an exit code that reads as a pass
        _say("hds-compliance: internal error (please report it):\n" + traceback.format_exc().rstrip())
        return EXIT_FAILED
    finally:
        signal.signal(signal.SIGTERM, previous)
        _quiet_stdout()


def _say(line: str) -> None:
    """One line on standard error, even when it is a closed pipe."""
    with contextlib.suppress(OSError):
        print(line, file=sys.stderr, flush=True)


def _quiet_stdout() -> None:
    """Flush standard output now; if its reader is gone, point it at /dev/null so the interpreter's own
    flush at exit does not print a second error."""
    try:
        sys.stdout.flush()
    except OSError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
