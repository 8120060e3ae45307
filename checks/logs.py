"""System logs: forwarded off the host (a compromised host cannot erase what already left it) and kept
across reboots.

Forwarding is read from the configuration of rsyslog (Debian and RHEL: ``/etc/rsyslog.conf`` and the
``/etc/rsyslog.d/*.conf`` it includes), syslog-ng and systemd-journal-upload. The checks prove what is
configured; whether the daemon runs is a separate fact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from hds_compliance.check import Context, NoParams, Outcome, Params, check, failed, not_applicable, passed
from hds_compliance.facts import Fact, FileContent, FilesMatching, FileStat, Processes

RSYSLOG = FileContent("/etc/rsyslog.conf")
RSYSLOG_D = FilesMatching("/etc/rsyslog.d/*.conf")
SYSLOG_NG = FileContent("/etc/syslog-ng/syslog-ng.conf")
SYSLOG_NG_D = FilesMatching("/etc/syslog-ng/conf.d/*.conf")
JOURNAL_UPLOAD = FileContent("/etc/systemd/journal-upload.conf")
JOURNAL_UPLOAD_D = FilesMatching("/etc/systemd/journal-upload.conf.d/*.conf")
FORWARDING_FACTS: list[Fact[Any]] = [
    RSYSLOG,
    RSYSLOG_D,
    SYSLOG_NG,
    SYSLOG_NG_D,
    JOURNAL_UPLOAD,
    JOURNAL_UPLOAD_D,
]

PROCESSES = Processes()
JOURNALD = FileContent("/etc/systemd/journald.conf")
JOURNALD_USR = FileContent("/usr/lib/systemd/journald.conf")
JOURNALD_D = FilesMatching("/etc/systemd/journald.conf.d/*.conf")
JOURNALD_USR_D = FilesMatching("/usr/lib/systemd/journald.conf.d/*.conf")
JOURNAL_DIR = FileStat("/var/log/journal")

_RANK = {"udp": 0, "tcp": 1, "relp": 1, "tls": 2}
_NEED = {"any": 0, "reliable": 1, "tls": 2}


@dataclass(frozen=True)
class _Forward:
    tool: str
    target: str
    transport: str  # udp, tcp, relp, tls
    where: str

    def __str__(self) -> str:
        return f"{self.tool} to {self.target} over {self.transport} ({self.where})"


def _uncomment(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    return "\n".join("" if line.lstrip().startswith("#") else line for line in text.splitlines())


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _rsyslog(name: str, data: bytes) -> list[_Forward]:
    text = _uncomment(data.decode("utf-8", "replace"))
    out = []
    legacy = re.compile(r"^\s*[^\s$&(]\S*\s+-?(@@?)(\([^)]*\))?(\[[^\]]+\]|[^\s:;]+)(:\d+)?", re.M)
    for match in legacy.finditer(text):
        transport = "tcp" if match.group(1) == "@@" else "udp"
        target = match.group(3) + (match.group(4) or "")
        out.append(_Forward("rsyslog", target, transport, f"{name} line {_line_of(text, match.start())}"))
    for match in re.finditer(r"\baction\s*\((.*?)\)", text, re.S | re.I):
        body = match.group(1)
        kind = re.search(r'\btype\s*=\s*"(\w+)"', body, re.I)
        target = re.search(r'\btarget\s*=\s*"([^"]+)"', body, re.I)
        if not kind or not target or kind.group(1).lower() not in ("omfwd", "omrelp"):
            continue
        port = re.search(r'\bport\s*=\s*"?(\d+)', body, re.I)
        if kind.group(1).lower() == "omrelp":
            tls = re.search(r'\btls\s*=\s*"on"', body, re.I)
            transport = "tls" if tls else "relp"
        else:
            protocol = re.search(r'\bprotocol\s*=\s*"(\w+)"', body, re.I)
            mode = re.search(r'\bstreamdrivermode\s*=\s*"?1', body, re.I)
            tcp = protocol is not None and protocol.group(1).lower() == "tcp"
            transport = "tls" if tcp and mode else "tcp" if tcp else "udp"
        where = f"{name} line {_line_of(text, match.start())}"
        host = target.group(1) + (f":{port.group(1)}" if port else "")
        out.append(_Forward("rsyslog", host, transport, where))
    return out


def _syslog_ng(name: str, data: bytes) -> list[_Forward]:
    text = _uncomment(data.decode("utf-8", "replace"))
    used = set(re.findall(r"\bdestination\s*\(\s*([\w-]+)\s*\)", text))
    out = []
    for match in re.finditer(r"\bdestination\s+([\w-]+)\s*\{(.*?)\}\s*;", text, re.S):
        dest, body = match.groups()
        driver = re.search(r"\b(network|syslog|tcp6?|udp6?)\s*\(\s*\"?([^\"\s)]+)", body)
        if not driver or dest not in used:
            continue
        kind = driver.group(1)
        transport_opt = re.search(r"transport\s*\(\s*\"?(\w+)", body)
        if re.search(r"\btls\s*\(", body) or (transport_opt and transport_opt.group(1) == "tls"):
            transport = "tls"
        elif kind.startswith("udp") or (transport_opt and transport_opt.group(1) == "udp"):
            transport = "udp"
        else:
            transport = "tcp"  # network() and syslog() default to TCP
        where = f"{name} line {_line_of(text, match.start())}"
        out.append(_Forward("syslog-ng", driver.group(2), transport, where))
    return out


def _journal_upload(name: str, data: bytes) -> list[_Forward]:
    out = []
    section = ""
    for number, raw in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        line = raw.strip()
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "Upload" and line.startswith("URL=") and line[4:].strip():
            url = line[4:].strip()
            transport = "tls" if url.startswith("https://") else "tcp"
            out.append(_Forward("systemd-journal-upload", url, transport, f"{name} line {number}"))
    return out


def _includes_dropins(main: bytes) -> bool:
    text = _uncomment(main.decode("utf-8", "replace"))
    return bool(re.search(r"(\$IncludeConfig\s+|include\s*\([^)]*file\s*=\s*\")/etc/rsyslog\.d/", text))


class ForwardingParams(Params):
    transport: Literal["any", "reliable", "tls"] = Field(
        default="any", description="weakest accepted transport: any (UDP too), reliable (TCP/RELP), tls"
    )


@check("logging.remote_forwarding_configured", params=ForwardingParams, facts=lambda p: FORWARDING_FACTS)
def logging_remote_forwarding_configured(p: ForwardingParams, ctx: Context) -> Outcome:
    """Logs are forwarded to a remote collector (rsyslog, syslog-ng or systemd-journal-upload config)."""
    forwards: list[_Forward] = []
    notes: list[str] = []
    main = ctx.get(RSYSLOG)
    dropins = ctx.get(RSYSLOG_D)
    if main is not None:
        forwards += _rsyslog(RSYSLOG.arg, main)
        if _includes_dropins(main):
            for name, data in dropins.items():
                forwards += _rsyslog(name, data)
        elif dropins:
            notes.append("/etc/rsyslog.d is not included by /etc/rsyslog.conf")
    ng = ctx.get(SYSLOG_NG)
    if ng is not None:
        ng_files = [(SYSLOG_NG.arg, ng), *ctx.get(SYSLOG_NG_D).items()]
        # destinations and log paths may sit in different files: read them as one text
        joined = b"\n".join(data for _, data in ng_files)
        forwards += [
            _Forward(f.tool, f.target, f.transport, "syslog-ng configuration")
            for f in _syslog_ng(SYSLOG_NG.arg, joined)
        ]
    upload = [(JOURNAL_UPLOAD.arg, ctx.get(JOURNAL_UPLOAD) or b""), *ctx.get(JOURNAL_UPLOAD_D).items()]
    for name, data in upload:
        forwards += _journal_upload(name, data)
    tail = f" ({'; '.join(notes)})" if notes else ""
    if not forwards:
        return failed(f"no remote log forwarding in rsyslog, syslog-ng or journal-upload configuration{tail}")
    good = [f for f in forwards if _RANK[f.transport] >= _NEED[p.transport]]
    if not good:
        shown = "; ".join(str(f) for f in forwards)
        return failed(f"logs are forwarded only over a transport weaker than {p.transport}: {shown}")
    return passed("logs forwarded: " + "; ".join(str(f) for f in good) + tail)


def _storage(files: list[tuple[str, bytes]]) -> tuple[str, str]:
    value, where = "auto", "systemd's default"
    for name, data in files:
        section = ""
        for number, raw in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]").strip()
            elif section == "Journal" and line.split("=", 1)[0].strip() == "Storage" and "=" in line:
                value, where = line.split("=", 1)[1].strip() or "auto", f"{name} line {number}"
    return value, where


@check(
    "logging.journal_persistent",
    facts=lambda p: [PROCESSES, JOURNALD, JOURNALD_USR, JOURNALD_D, JOURNALD_USR_D, JOURNAL_DIR],
)
def logging_journal_persistent(p: NoParams, ctx: Context) -> Outcome:
    """The systemd journal is kept on disk (Storage=persistent, or auto with /var/log/journal present)."""
    if "systemd-journal" not in ctx.get(PROCESSES):
        return not_applicable("systemd-journald is not running on this host")
    main = ctx.get(JOURNALD)
    files = [(JOURNALD.arg, main)] if main is not None else []
    if main is None and (usr := ctx.get(JOURNALD_USR)) is not None:
        files = [(JOURNALD_USR.arg, usr)]
    # drop-ins: /etc overrides a same-named file of /usr/lib; all are applied in file-name order
    dropins = {name.rsplit("/", 1)[-1]: (name, data) for name, data in ctx.get(JOURNALD_USR_D).items()}
    dropins.update({name.rsplit("/", 1)[-1]: (name, data) for name, data in ctx.get(JOURNALD_D).items()})
    files += [dropins[base] for base in sorted(dropins)]
    value, where = _storage(files)
    if value == "persistent":
        return passed(f"journald Storage=persistent ({where})")
    if value == "auto":
        directory = ctx.get(JOURNAL_DIR)
        if directory is not None and directory.file_type == "directory":
            return passed(f"journald Storage=auto ({where}) and /var/log/journal exists: journal on disk")
        return failed(f"journald Storage=auto ({where}) and no /var/log/journal: the journal stays in RAM")
    return failed(f"journald Storage={value} ({where}): the journal is lost at reboot")
