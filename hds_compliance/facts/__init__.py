"""Facts: the pieces of host state checks read, one module per area; each is a POSIX sh snippet and a parser.

Importing this package imports every module of it, which registers every fact kind (see :data:`KINDS`): a
key read back from a capture (``file:/etc/passwd``) can always be turned into its fact again with
:func:`fact_from_key`, in the collector worker as in a certifier's re-evaluation.
"""

import importlib
import pkgutil

from hds_compliance.facts.accounts import ShadowEntry, ShadowSummary
from hds_compliance.facts.audit import AuditRules, AuditStatus
from hds_compliance.facts.base import (
    ABSENT,
    KINDS,
    NOT_FOUND,
    UNREADABLE,
    Fact,
    FactError,
    Part,
    fact_from_key,
    origin_of,
)
from hds_compliance.facts.files import FileContent, FilesMatching, FileStat, Stat
from hds_compliance.facts.firewall import Firewall, FirewallRules
from hds_compliance.facts.identity import Address, Addresses, NodeName
from hds_compliance.facts.kernel import Mount, MountTable, Sysctl
from hds_compliance.facts.processes import Processes
from hds_compliance.facts.sshd import SshdConfig, SshdEffectiveConfig
from hds_compliance.facts.timesync import TimeSync, TimeSyncStatus

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "ABSENT",
    "KINDS",
    "NOT_FOUND",
    "UNREADABLE",
    "Address",
    "Addresses",
    "AuditRules",
    "AuditStatus",
    "Fact",
    "FactError",
    "FileContent",
    "FileStat",
    "FilesMatching",
    "Firewall",
    "FirewallRules",
    "Mount",
    "MountTable",
    "NodeName",
    "Part",
    "Processes",
    "ShadowEntry",
    "ShadowSummary",
    "SshdConfig",
    "SshdEffectiveConfig",
    "Stat",
    "Sysctl",
    "TimeSync",
    "TimeSyncStatus",
    "fact_from_key",
    "origin_of",
]
