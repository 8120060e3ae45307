"""Redaction: secrets never leave the scan, the text keeps its grammar, and no verdict changes silently."""

from __future__ import annotations

import hashlib
import random
import re
import subprocess
import sys
from pathlib import Path

from test_probe import run_sh
from test_reads import rd_output

from hds_compliance.check import Context, HostInfo, registry
from hds_compliance.collect.probe import new_nonce, parse, render
from hds_compliance.evidence.redact import (
    _HINTS,
    _ONE_LINE,
    _SECRET_KEY,
    _SECRET_PATTERNS,
    _replacement,
    _secret_keys,
    _subn_lines,
    redact,
    scrub,
)
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
    assert re.search(r"\[REDACTED-private-key\.[0-9a-f]{12}\]", text)
    assert re.search(r"root:\[REDACTED-password-hash\.[0-9a-f]{12}\]:19000", text)


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
    assert re.search(rb"https://backup:\[REDACTED-url-credentials\.[0-9a-f]{12}\]@repo\.example\.fr", out)
    assert set(kinds) == {"url-credentials", "bearer-token", "jwt", "cloud-key"}


def test_markers_are_one_word() -> None:
    out, _ = scrub(b"password = hunter2hunter2, next\n")
    assert re.fullmatch(rb"password = \[REDACTED-token\.[0-9a-f]{12}\] next\n", out), out


def test_equal_secrets_show_as_equal_markers_and_no_marker_can_be_guessed_back() -> None:
    """Within a run, the same secret gets the same marker (on any host, in any file); another secret
    another one. The key is this run's: the marker is not a plain hash of the secret, and another process
    (another scan) marks the same secret differently."""
    one, _ = scrub(b"password = hunter2hunter2\n")
    again, _ = scrub(b"db_password: hunter2hunter2\n")
    other, _ = scrub(b"password = correcthorse\n")
    mac = re.search(rb"\.([0-9a-f]{12})\]", one).group(1)  # type: ignore[union-attr]
    assert mac in again and mac not in other
    assert mac != hashlib.sha256(b"hunter2hunter2").hexdigest()[:12].encode()
    code = (
        "from hds_compliance.evidence.redact import scrub\n"
        "print(scrub(b'password = hunter2hunter2')[0].decode())"
    )
    elsewhere = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert mac.decode() not in elsewhere and "[REDACTED-token." in elsewhere


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


# Pieces of text that secrets, their look-alikes and their surroundings are made of: random strings of them
# exercise every pattern, the sudo tags, line ends and case, where a fast path could part from the plain one.
_PIECES = (
    *(
        b"api_key",
        b"API-KEY",
        b"apikey",
        b"access_key",
        b"Access-Key",
        b"secret",
        b"TOKEN",
        b"passwd",
        b"Password",
    ),
    *(b"NOPASSWD", b"PASSWD :", b" = ", b"=", b":", b": ", b"  ", b"\n", b"\t", b"\r\n", b"'x'", b'"a b"'),
    *(
        b"hunter2hunter2",
        b"abc",
        b"[REDACTED-token.0123456789ab]",
        b"monkey",
        b"keys",
        b"my_api_key",
        b"x.api-key",
        b"\xff",
    ),
    *(
        b"https://",
        b"HTTP://",
        b"s3+https://",
        b"user:pass@host",
        b"u:p@ss@h",
        b"@",
        b"/",
        b"backup:S3cret@repo",
    ),
    *(b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl", b"eyJhbGciOiJI.", b"eyJzdWIiOiIx."),
    *(
        b"AKIAABCDEFGHIJKLMNOP",
        b"ASIA0123456789ABCDEF",
        b"akia",
        b"Bearer ",
        b"bearer\n",
        b"abcdefghijklmnopqrst",
    ),
    *(
        b"$6$",
        b"$y$",
        b"saltsalt$abcdefghijklmnop",
        b"-----BEGIN OPENSSH PRIVATE KEY-----",
        b"b3BlbnNzaC1rZXk=",
    ),
    *(
        b"-----END OPENSSH PRIVATE KEY-----",
        b"private key",
        b"secretkey",
        b"tokentoken",
        b"ALL",
        b"/usr/bin/ls,",
    ),
)


def _random_texts(count: int) -> list[bytes]:
    rng = random.Random(5)
    return [b"".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 30))) for _ in range(count)]


def test_secret_keys_found_from_their_words_are_the_patterns_matches() -> None:
    """The fast search for secret-named keys (from the words' positions) finds exactly what the pattern
    finds trying every byte, in the same order."""
    for text in _random_texts(3000):
        lowered = text.lower()
        assert [k.span() for k in _secret_keys(lowered)] == [k.span() for k in _SECRET_KEY.finditer(lowered)]


def test_line_by_line_substitution_is_the_patterns_own() -> None:
    """Patterns searched only on the lines holding their hint replace exactly what a search of the whole
    text replaces (and count the same)."""
    for kind, pattern in _SECRET_PATTERNS:
        if kind not in _ONE_LINE:
            continue
        replacement = _replacement(kind)
        for text in _random_texts(1500):
            assert _subn_lines(pattern, replacement, text, _HINTS[kind]) == pattern.subn(replacement, text)
