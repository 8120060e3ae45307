"""Facts: the pieces of host state checks read, one module per area; each is a POSIX sh snippet and a parser.

Importing this package registers every fact kind (see :data:`KINDS`), so a key read back from a capture
(``file:/etc/passwd``) can always be turned into its fact again with :func:`fact_from_key`.
"""

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
)
from hds_compliance.facts.files import FileContent, FilesMatching, FileStat, Stat
from hds_compliance.facts.firewall import Firewall, FirewallRules
from hds_compliance.facts.kernel import Mount, MountTable, Sysctl
from hds_compliance.facts.processes import Processes
from hds_compliance.facts.sshd import SshdConfig, SshdEffectiveConfig
from hds_compliance.facts.timesync import TimeSync, TimeSyncStatus

__all__ = [
    "ABSENT",
    "KINDS",
    "NOT_FOUND",
    "UNREADABLE",
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
]
