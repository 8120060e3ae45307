"""Inventories: pyinfra inventory files (Python) read without pyinfra, validated with pydantic.

A module-level name not starting with ``_`` whose value is a list of hosts, or a ``(hosts, data)`` tuple,
is a group (pyinfra's convention). A host is ``"name"`` or ``("name", {data})``. ``all`` holds global data.
``group_data/<group>.py`` beside the file adds group data. Precedence: host > group > all.

Host data read by checks: ``hds_activities`` (1-6), ``roles``, ``location_country`` (ISO 3166 alpha-2).
Connectors that write to hosts (``@docker``, ``@podman``, ``@dockerssh``, ``@podmanssh``) are refused.
"""

from __future__ import annotations

import ast
import fnmatch
import re
import runpy
import traceback
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from hds_compliance.errors import InputError, Problem
from hds_compliance.model import BackupRepository

_ENDPOINT_RE = re.compile(r"^(https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/\S*)?|[A-Za-z0-9.-]+:[0-9]{1,5})$")

READ_ONLY_CONNECTORS = ("local", "ssh", "chroot")
REFUSED_CONNECTORS = {
    "docker": "@docker starts or commits containers on disconnect",
    "podman": "@podman starts or commits containers on disconnect",
    "dockerssh": "@dockerssh runs a container and commits it on disconnect",
    "podmanssh": "@podmanssh runs a container and commits it on disconnect",
}

# ISO 3166-1 alpha-2 codes (officially assigned), to catch typos such as "FX" or "UK".
_ISO_3166 = frozenset(
    (
        "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ "
        "BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM "
        "DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS "
        "GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN "
        "KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ "
        "MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM "
        "PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV "
        "SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI "
        "VN VU WF WS YE YT ZA ZM ZW"
    ).split()
)


class HostData(BaseModel):
    """The host data hds-compliance reads or hands to pyinfra, validated strictly (``"no"`` is not a
    boolean, ``"22"`` not a port). Keys of our own (``hds_*``, ``roles``...) and pyinfra's ``ssh_*`` and
    ``chroot_*`` must be known ones; any other key belongs to the team's inventory and is ignored."""

    model_config = ConfigDict(extra="allow")

    # Our keys, then pyinfra 3.10's SSH connector data (pyinfra.connectors.ssh.ConnectorData) and @chroot's,
    # with strict scalar types: checked before any connection, so a typo or a wrong type is exit 2 naming
    # the host and the key, not one collector error per check.

    hds_activities: list[StrictInt] | None = Field(
        default=None, description="HDS activities (1-6) the host serves"
    )
    hds_sudo: StrictBool = Field(
        default=False, description="run the probe through 'sudo -n' (never a prompt)"
    )
    hds_ssh_jump: StrictStr | None = Field(
        default=None,
        description="reach the host through this jump host (ProxyJump): inventory host or [user@]host[:port]",
    )
    roles: list[StrictStr] = Field(
        default_factory=list, description="bastion, log_collector, backup, database..."
    )
    location_country: StrictStr | None = Field(
        default=None, description="ISO 3166-1 alpha-2 country of the host"
    )
    ssh_hostname: StrictStr | None = Field(
        default=None, description="address pyinfra connects to (also used to match hosts)"
    )
    tls_endpoints: list[StrictStr] = Field(
        default_factory=list,
        description="TLS services of the host: 'host:port' or 'https://host[:port]/path'",
    )
    backup_repositories: list[BackupRepository] = Field(
        default_factory=list, description="backup repositories a backup host holds (restic, borg)"
    )
    ssh_strict_host_key_checking: StrictStr | None = None
    ssh_port: StrictInt | None = Field(default=None, ge=1, le=65535)
    ssh_user: StrictStr | None = None
    ssh_password: StrictStr | None = None
    ssh_key: StrictStr | None = None
    ssh_key_password: StrictStr | None = None
    ssh_allow_agent: StrictBool | None = None
    ssh_look_for_keys: StrictBool | None = None
    ssh_forward_agent: StrictBool | None = None
    ssh_config_file: StrictStr | None = None
    ssh_known_hosts_file: StrictStr | None = None
    ssh_paramiko_connect_kwargs: dict[str, Any] | None = None
    ssh_connect_retries: StrictInt | None = Field(default=None, ge=0)
    ssh_connect_retry_min_delay: StrictFloat | None = Field(default=None, ge=0)
    ssh_connect_retry_max_delay: StrictFloat | None = Field(default=None, ge=0)
    ssh_file_transfer_protocol: Literal["sftp", "scp"] | None = None
    chroot_directory: StrictStr | None = None

    @field_validator("hds_activities")
    @classmethod
    def _activities(cls, values: list[int] | None) -> list[int] | None:
        if values is not None and any(v not in range(1, 7) for v in values):
            raise ValueError(f"HDS activities are 1 to 6, got {values}")
        if values == []:
            # a host in scope of nothing would be judged on nothing: leave the key out to judge every control
            raise ValueError("a host serves at least one HDS activity (1-6); leave it out for all of them")
        return values

    @field_validator("location_country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        if value is not None and value not in _ISO_3166:
            raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code (e.g. 'FR', 'DE')")
        return value

    @field_validator("tls_endpoints")
    @classmethod
    def _endpoints(cls, values: list[str]) -> list[str]:
        for value in values:
            if not _ENDPOINT_RE.match(value):
                raise ValueError(f"{value!r} is not 'host:port' or 'https://host[:port][/path]'")
        return values

    @field_validator("ssh_strict_host_key_checking")
    @classmethod
    def _strict(cls, value: str | None) -> str | None:
        if value not in (None, "yes"):
            raise ValueError("must be 'yes': hds-compliance never trusts an unknown host key")
        return value


@dataclass
class Host:
    """One target of the scan; ``jump``: the connection data of the host it is reached through, if any."""

    name: str
    connector: str
    data: dict[str, Any]
    groups: list[str] = field(default_factory=list)
    jump: dict[str, Any] | None = None

    @property
    def info(self) -> HostData:
        """Validated host data."""
        return HostData.model_validate(self.data)


@dataclass
class Inventory:
    """Hosts in file order; ``order`` keeps every host's name when a selection narrows ``hosts``."""

    path: str
    hosts: list[Host]
    order: list[str] = field(default_factory=list)


def default_inventory() -> Path:
    """The shipped ``inventories/local.py`` (scans this machine)."""
    return Path(str(resources.files("hds_compliance.inventories") / "local.py"))


def connector_of(name: str, where: str, line: int | None) -> str:
    """Connector of a host name; raises InputError for connectors that write or are unknown."""
    if not name.startswith("@"):
        return "ssh"
    kind = name[1:].split("/", 1)[0]
    if kind in READ_ONLY_CONNECTORS:
        if kind == "chroot" and not name[len("@chroot/") :]:
            raise InputError([Problem(where, line, name, "@chroot needs a directory: @chroot/<path>")])
        return kind
    reason = REFUSED_CONNECTORS.get(kind)
    message = (
        f"connector @{kind} is refused: {reason}; hds-compliance never changes a host"
        if reason
        else f"unknown connector @{kind} (supported: @local, @ssh/<host>, @chroot/<dir>, a plain SSH host)"
    )
    raise InputError([Problem(where, line, name, message)])


def _name_lines(path: Path) -> dict[str, int]:
    """Line of the first string literal equal to each host name, for error messages."""
    lines: dict[str, int] = {}
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, OSError, UnicodeDecodeError):
        return lines
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            lines.setdefault(node.value, node.lineno)
    return lines


def _run_file(path: Path, display: str) -> dict[str, Any]:
    try:
        return runpy.run_path(str(path), run_name="hds_inventory")
    except SystemExit as exc:  # an inventory defines hosts; it does not decide the scan's exit code
        raise InputError(
            [Problem(display, _line_in(exc, path), "", f"the inventory exits (sys.exit({exc.code!r}))")]
        ) from exc
    except SyntaxError as exc:
        raise InputError([Problem(display, exc.lineno, "", f"invalid Python: {exc.msg}")]) from exc
    except Exception as exc:
        raise InputError([Problem(display, _line_in(exc, path), "", f"{type(exc).__name__}: {exc}")]) from exc


def _line_in(exc: BaseException, path: Path) -> int | None:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path]
    return frames[-1].lineno if frames else None


def _group_data(path: Path) -> dict[str, dict[str, Any]]:
    folder = path.parent / "group_data"
    data: dict[str, dict[str, Any]] = {}
    if folder.is_dir():
        for file in sorted(folder.glob("*.py")):
            values = _run_file(file, str(file))
            data[file.stem] = {k: v for k, v in values.items() if not k.startswith("_") and _plain(v)}
    return data


def _plain(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | list | tuple | dict) or value is None


def _split_group(value: Any) -> tuple[list[Any], dict[str, Any]] | None:
    if (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], list | tuple)
        and isinstance(value[1], dict)
    ):
        return list(value[0]), dict(value[1])
    if isinstance(value, list):
        return list(value), {}
    return None


_JUMP_RE = re.compile(r"^(?:([A-Za-z0-9._-]+)@)?([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?$")
# What a hop takes from the inventory host it names; the rest (a password...) is never used for a hop.
_JUMP_KEYS = ("ssh_hostname", "ssh_port", "ssh_user", "ssh_key", "ssh_known_hosts_file")


def _resolve_jumps(hosts: list[Host], display: str, lines: dict[str, int]) -> list[Problem]:
    """Each ``hds_ssh_jump``: the named inventory host's connection data (a bastion of the inventory), or
    ``[user@]host[:port]`` with the target's key and known_hosts. One hop: a jump host reached through
    another is refused, as is a jump for a host that is not an SSH one."""
    by_name = {h.name: h for h in hosts}
    problems = []
    for host in hosts:
        spec = host.data.get("hds_ssh_jump")
        if spec is None:
            continue
        where = f"{host.name}.hds_ssh_jump"
        line = lines.get(host.name)
        if host.connector != "ssh":
            problems.append(
                Problem(display, line, where, "only an SSH host can be reached through a jump host")
            )
        elif "ssh_config_file" in host.data:
            problems.append(
                Problem(display, line, where, "give the jump here or in ssh_config_file, not both")
            )
        elif spec in by_name:
            jump = by_name[spec]
            if jump.connector != "ssh" or jump.data.get("hds_ssh_jump"):
                problems.append(Problem(display, line, where, f"{spec} is not reachable directly over SSH"))
                continue
            host.jump = {k: jump.data[k] for k in _JUMP_KEYS if k in jump.data}
            host.jump.setdefault("ssh_hostname", jump.name)
        elif match := _JUMP_RE.match(spec):
            user, address, port = match.groups()
            host.jump = {k: host.data[k] for k in ("ssh_key", "ssh_known_hosts_file") if k in host.data}
            host.jump["ssh_hostname"] = address.strip("[]")
            if user:
                host.jump["ssh_user"] = user
            if port:
                host.jump["ssh_port"] = int(port)
        else:
            problems.append(
                Problem(display, line, where, f"{spec!r} is neither an inventory host nor [user@]host[:port]")
            )
    return problems


def _unknown_keys(data: dict[str, Any]) -> list[tuple[str, str]]:
    """Keys in our namespaces (``hds_``, pyinfra's ``ssh_`` and ``chroot_``) that nothing reads: typos, which
    would otherwise leave a setting silently unset; and pyinfra's ``_sudo`` if it is not a boolean."""
    known = set(HostData.model_fields)
    out = [
        (key, "unknown host data key (a typo?)")
        for key in sorted(k for k in data if isinstance(k, str))
        if key.startswith(("hds_", "ssh_", "chroot_")) and key not in known
    ]
    if "_sudo" in data and not isinstance(data["_sudo"], bool):
        out.append(("_sudo", f"must be True or False, got {data['_sudo']!r}"))
    return out


def load_inventory(path: Path) -> Inventory:
    """Read an inventory file; raise :class:`InputError` (file, line, field) if it is broken."""
    display = str(path)
    if not path.is_file():
        raise InputError([Problem(display, None, "", "inventory file not found")])
    namespace = _run_file(path, display)
    lines = _name_lines(path)
    extra_groups = _group_data(path)
    global_data = dict(extra_groups.get("all", {}))
    all_group = _split_group(namespace.get("all"))
    if all_group is not None:
        global_data.update(all_group[1])

    problems: list[Problem] = []
    order: list[str] = []
    host_data: dict[str, dict[str, Any]] = {}
    group_data: dict[str, dict[str, Any]] = {}
    membership: dict[str, list[str]] = {}
    for group, value in namespace.items():
        if group.startswith("_") or group in ("all", "hds_inventory"):
            continue
        split = _split_group(value)
        if split is None:
            continue
        members, data = split
        group_data[group] = {**extra_groups.get(group, {}), **data}
        for item in members:
            data_item: dict[str, Any]
            if isinstance(item, str):
                name, data_item = item, {}
            elif (
                isinstance(item, tuple)
                and len(item) == 2
                and isinstance(item[0], str)
                and isinstance(item[1], dict)
            ):
                name, data_item = item
            else:
                problems.append(
                    Problem(display, None, group, f"a host is 'name' or ('name', {{data}}), got {item!r}")
                )
                continue
            if name not in host_data:
                order.append(name)
                host_data[name] = {}
            host_data[name].update(data_item)
            membership.setdefault(name, []).append(group)
    if all_group is not None:
        for item in all_group[0]:
            name = item if isinstance(item, str) else item[0]
            if name not in host_data:
                order.append(name)
                host_data[name] = dict(item[1]) if isinstance(item, tuple) else {}
                membership[name] = []
    if not order and not problems:
        problems.append(
            Problem(display, None, "", 'no hosts: define a group, e.g. web = ["web1", ("db1", {...})]')
        )

    hosts: list[Host] = []
    for name in order:
        merged = dict(global_data)
        for group in membership[name]:
            merged.update(group_data[group])
        merged.update(host_data[name])
        line = lines.get(name)
        found = [Problem(display, line, f"{name}.{key}", message) for key, message in _unknown_keys(merged)]
        try:
            connector = connector_of(name, display, line)
            HostData.model_validate(merged)
        except InputError as exc:
            found += exc.problems
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"])
                message = err["msg"].removeprefix("Value error, ")
                found.append(Problem(display, line, f"{name}.{loc}", message))
        if found:
            problems += found
            continue
        hosts.append(Host(name=name, connector=connector, data=merged, groups=membership[name]))
    problems += _resolve_jumps(hosts, display, lines)
    if sum(1 for h in hosts if h.connector == "local") > 1:
        problems.append(Problem(display, None, "@local", "only one @local host per inventory"))
    if problems:
        raise InputError(problems)
    return Inventory(path=display, hosts=hosts, order=[h.name for h in hosts])


def select_hosts(inventory: Inventory, patterns: list[str]) -> tuple[list[Host], list[Host]]:
    """The hosts ``--limit`` selects, and those it leaves out (fleet checks need to know them).

    A pattern (several may be given, or comma-separated, as pyinfra's ``--limit`` takes them) is a host
    name, a group name, or a shell glob over either (``db*``, ``web-[12]``). A pattern that selects nothing
    is invalid input naming the hosts and groups there are: a typo must not shrink a scan silently.
    """
    wanted = [p.strip() for item in patterns for p in item.split(",") if p.strip()]
    groups = sorted({g for h in inventory.hosts for g in h.groups})
    problems = []
    chosen: set[str] = set()
    for pattern in wanted:
        hits = {
            h.name
            for h in inventory.hosts
            if fnmatch.fnmatchcase(h.name, pattern) or any(fnmatch.fnmatchcase(g, pattern) for g in h.groups)
        }
        if not hits:
            names = [h.name for h in inventory.hosts]
            shown = ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
            problems.append(
                Problem(
                    inventory.path,
                    None,
                    "--limit",
                    f"{pattern!r} matches no host or group "
                    f"(hosts: {shown}; groups: {', '.join(groups) or 'none'})",
                )
            )
        chosen |= hits
    if problems:
        raise InputError(problems)
    return (
        [h for h in inventory.hosts if h.name in chosen],
        [h for h in inventory.hosts if h.name not in chosen],
    )
