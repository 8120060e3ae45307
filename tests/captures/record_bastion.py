"""Record tests/captures/bastion.yaml: each scenario of tests/bastion_scenarios.py laid in a private /etc,
the facts of bastion.sessions_recorded collected there by the real probe (auditctl stood in, see there).

    sudo PYTHONPATH=.:tests python tests/captures/record_bastion.py

Read the diff before committing: the cases' expectations are what the check must say.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))

from authn_ns import EtcTree  # noqa: E402
from bastion_scenarios import collect, scenarios  # noqa: E402
from fact_fixtures import dump_capture  # noqa: E402

from hds_compliance.check import registry  # noqa: E402

HEADER = """\
# Captures for bastion.sessions_recorded, RECORDED on this Debian 12 VM (sudo 1.9.13, tlog 12.1) by
# tests/captures/record_bastion.py: each scenario's files laid in a private /etc (overlay, unshare -m) and the
# check's facts collected there by the real probe, in a PID namespace where only the named daemons run.
# auditctl is a stand-in printing what the real one prints here with no rule loaded (the kernel refuses
# audit requests from a PID namespace). The sssd.conf of the scenarios holds a bind password that the
# sssd-session-recording fact must not carry.
"""


def main() -> None:
    """Record every scenario."""
    spec = registry()["bastion.sessions_recorded"]
    facts = spec.facts(spec.validate({}))
    cases = []
    shared: dict[str, dict[str, object]] = {}  # identical captures are one object: YAML anchors them once
    for scenario in scenarios():
        with EtcTree(scenario.files) as tree:
            captures = collect(tree, facts, scenario.processes)
        cases.append(
            {
                "check": "bastion.sessions_recorded",
                "name": scenario.name,
                "host": {"roles": ["bastion"]},
                "captures": {
                    key: shared.setdefault(repr(dump_capture(c)), dump_capture(c))
                    for key, c in sorted(captures.items())
                },
                "expect": scenario.expect,
                "message": scenario.message,
            }
        )
    text = HEADER + yaml.dump({"cases": cases}, sort_keys=False, allow_unicode=True, width=110)
    (HERE / "bastion.yaml").write_text(text)


if __name__ == "__main__":
    main()
