"""Redaction: secrets never leave the scan, the text keeps its grammar, and no verdict changes silently."""

from __future__ import annotations

from pathlib import Path

from test_probe import run_sh
from test_reads import rd_output

from hds_compliance.check import Context, HostInfo, registry
from hds_compliance.collect.probe import new_nonce, parse, render
from hds_compliance.evidence.redact import redact, scrub
from hds_compliance.facts import FileContent
from hds_compliance.facts.nss import NssSources
from hds_compliance.facts.sudo import SudoPolicySources
from hds_compliance.model import Capture, Status


def test_secrets_are_redacted_and_recorded(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text(
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n"
        "-----END OPENSSH PRIVATE KEY-----\n"
        "root:$6$saltsalt$abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789./:19000:0:99999:7:::\n"
        "api_token = s3cr3tvalue42\n"
    )
    fact = FileContent(str(key))
    probe = render([fact], new_nonce())
    capture = redact(parse(probe, run_sh(probe)).captures[0])
    text = capture.stdout_text()
    assert "b3BlbnNzaC1rZXktdjEAAAAABG5vbmU" not in text and "abcdefghijklmnop" not in text
    assert "s3cr3tvalue42" not in text
    assert capture.redactions == ["password-hash", "private-key", "token"]
    assert "[REDACTED-private-key]" in text and "root:[REDACTED-password-hash]:19000" in text


def test_credentials_in_urls_tokens_and_cloud_keys() -> None:
    data = (
        b"url=https://backup:Sup3rS3cret@repo.example.fr/restic\n"
        b"Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345\n"
        b"jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlX2hlcmU\n"
        b"aws AKIAABCDEFGHIJKLMNOP\n"
    )
    out, kinds = scrub(data)
    for secret in (
        b"Sup3rS3cret",
        b"abcdefghijklmnopqrstuvwxyz012345",
        b"c2lnbmF0dXJl",
        b"AKIAABCDEFGHIJKLMNOP",
    ):
        assert secret not in out
    assert b"https://backup:[REDACTED-url-credentials]@repo.example.fr" in out  # user and host stay
    assert set(kinds) == {"url-credentials", "bearer-token", "jwt", "cloud-key"}


def test_markers_are_one_word() -> None:
    out, _ = scrub(b"password = hunter2hunter2, next\n")
    assert out == b"password = [REDACTED-token] next\n"


def _sudo_verdict(sudoers: bytes) -> tuple[Status, str]:
    """no_nopasswd_all on a sudoers file, after the redaction pass the scan applies."""
    spec = registry()["sudo.no_nopasswd_all"]
    policy, nss = SudoPolicySources(), NssSources()
    # What the sudo-policy snippet prints: the sudoers file and host name, then the file as read by rd.
    marker = "/./" * 32
    body = b"P 12 /etc/sudoers\nO 1 h\n" + rd_output({"/etc/sudoers": sudoers}, marker, stat=" 440 0 0")
    captures = {
        policy.key: redact(Capture.from_bytes(policy.key, "(recorded)", body, exit_code=0)),
        nss.key: Capture(fact=nss.key, command="(recorded)", exit_code=100),
    }
    ctx = Context(HostInfo("h", "ssh"), captures, declared=frozenset(captures))
    try:
        outcome = spec.func(spec.validate({}), ctx)
    except Exception as exc:
        return Status.ERROR, str(exc)
    return outcome.status, outcome.message


def test_sudo_tags_are_not_tokens() -> None:
    """NOPASSWD: is a sudo tag, not a key: the command list after it must reach the check untouched.

    A text-level token pattern ate "/usr/bin/systemctl," and turned this grant of ALL into a pass.
    """
    status, message = _sudo_verdict(b"alice ALL=(root) NOPASSWD: /usr/bin/systemctl, ALL\n")
    assert status is Status.FAIL, message
    status, message = _sudo_verdict(b"alice ALL=(root) NOPASSWD: /bin/ls\n")
    assert status is Status.PASS, message


def test_a_redaction_inside_parsed_text_is_an_error_not_another_verdict() -> None:
    status, message = _sudo_verdict(b"alice ALL=(root) NOPASSWD: ALL\napi_key=abcdefghijkl\n")
    assert status is Status.ERROR and "redacted" in message, message
