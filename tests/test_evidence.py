"""Evidence bundles, built from a real scan of this machine and checked as a certifier would.

``keygen`` -> ``scan --bundle`` -> ``verify``; then every file of the bundle altered in turn, files removed
and added, a verdict edited and the bundle re-signed with the same key, another key: each is found and
named. The envelope is checked by third parties too: securesystemslib's DSSE verifier and OpenSSL, given
only the public key and the pre-authentication encoding DSSE defines.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from hds_compliance.evidence.bundle import (
    ENVELOPE,
    MANIFEST,
    PREFIX,
    BundleError,
    read_bundle,
    result_of,
    signed,
    write_archive,
)
from hds_compliance.evidence.signing import (
    PAYLOAD_TYPE,
    fingerprint,
    load_private,
    load_public,
    pae,
)
from hds_compliance.evidence.verify import verify

EXE = Path(sys.executable).with_name("hds-compliance")
SCAN = ["--profile", "minimal", "--skip-tag", "fs-walk"]


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(EXE), *args], cwd=cwd, capture_output=True, text=True, check=False)


@pytest.fixture(scope="session")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A work folder with keys/ (a key pair), r.json and out/evidence[.tar.gz] of one real local scan."""
    root = tmp_path_factory.mktemp("evidence")
    assert _run("keygen", "keys", cwd=root).returncode == 0
    done = _run(
        "scan",
        *SCAN,
        "--json",
        "r.json",
        "--bundle",
        "out/evidence",
        "--sign-key",
        "keys/signing.key",
        cwd=root,
    )
    assert done.returncode in (0, 1), done.stderr
    assert (root / "out/evidence.tar.gz").is_file()
    return root


@pytest.fixture
def bundle(made: Path, tmp_path: Path) -> Path:
    """A copy of the bundle folder, the test's own to alter."""
    return Path(shutil.copytree(made / "out/evidence", tmp_path / "evidence"))


def _verify(path: Path, made: Path) -> list[str]:
    return verify(read_bundle(path), load_public(made / "keys/signing.pub")).problems


def test_keygen_writes_an_owner_only_private_key_and_never_overwrites(made: Path) -> None:
    assert stat.S_IMODE((made / "keys/signing.key").stat().st_mode) == 0o600
    done = _run("keygen", "keys", cwd=made)
    assert done.returncode == 2 and "never overwritten" in done.stderr
    # the fingerprint is what OpenSSL computes from the public key alone
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-in", "keys/signing.pub", "-outform", "DER"],
        cwd=made,
        capture_output=True,
        check=True,
    ).stdout
    assert fingerprint(load_public(made / "keys/signing.pub")) == hashlib.sha256(der).hexdigest()


def test_a_fresh_bundle_verifies_as_a_folder_and_as_an_archive(made: Path) -> None:
    for target in ("out/evidence", "out/evidence.tar.gz"):
        done = _run("verify", target, "--key", "keys/signing.pub", cwd=made)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "verified (" in done.stdout and " 0 verdicts" not in done.stdout


def test_the_bundle_holds_per_host_captures_and_verdicts_and_is_owner_only(made: Path) -> None:
    root = made / "out/evidence"
    files = read_bundle(root).files
    result, run = result_of(files)
    assert [h["folder"] for h in run["hosts"]] == ["hosts/0001-_local"]
    assert result.hosts[0].captures and result.verdicts
    assert json.loads((made / "r.json").read_text())["verdicts"] == [
        v.model_dump(mode="json") for v in result.verdicts
    ]
    for path in [root, *root.rglob("*"), made / "out/evidence.tar.gz"]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
    with tarfile.open(made / "out/evidence.tar.gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(PREFIX + name for name in files)
    assert {(m.mode, m.uid, m.gid, m.uname, m.mtime) for m in members} == {
        (0o600, 0, 0, "", members[0].mtime)
    }


def test_every_file_altered_in_turn_is_named(bundle: Path, made: Path) -> None:
    names = sorted(p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file())
    assert len(names) > 10
    for name in names:
        path = bundle / name
        original = path.read_bytes()
        data = bytearray(original)
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
        problems = _verify(bundle, made)
        path.write_bytes(original)
        # the file itself is named; the manifest's own alteration is found through its signature
        assert any(p.startswith(name + ":") for p in problems), (name, problems)
    assert _verify(bundle, made) == []


def test_a_removed_file_and_an_added_file_are_named(bundle: Path, made: Path) -> None:
    (bundle / "junit.xml").unlink()
    (bundle / "hosts/extra.json").write_text("{}")
    problems = _verify(bundle, made)
    assert "junit.xml: missing (the manifest lists it)" in problems
    assert "hosts/extra.json: not in the manifest (added after signing)" in problems


def test_a_verdict_edited_and_signed_again_does_not_follow_from_the_captures(
    bundle: Path, made: Path
) -> None:
    files = read_bundle(bundle).files
    path = "hosts/0001-_local/verdicts.json"
    verdicts = json.loads(files[path])
    target = next(v for v in verdicts if v["status"] == "fail")
    target["status"] = "pass"
    files[path] = json.dumps(verdicts, indent=2).encode()
    result, _run_json = result_of(files)
    resigned = signed(
        {k: v for k, v in files.items() if k not in (MANIFEST, ENVELOPE)},
        load_private(made / "keys/signing.key"),
        result.run,
    )
    for name, data in resigned.items():
        (bundle / name).write_bytes(data)
    problems = _verify(bundle, made)
    where = f"control {target['control']} check {target['check']}#{target['index']}"
    want = f"{where}: bundle says pass, judging again gives fail"
    assert [p for p in problems if want in p], problems
    assert all(p.startswith("verdict does not follow") for p in problems), problems  # the signature holds


def test_another_key_fails(made: Path, tmp_path: Path) -> None:
    assert _run("keygen", str(tmp_path / "k"), cwd=made).returncode == 0
    done = _run("verify", "out/evidence.tar.gz", "--key", str(tmp_path / "k/signing.pub"), cwd=made)
    assert done.returncode == 1
    assert "manifest.dsse.json: not signed by the key given" in done.stdout


def test_a_damaged_archive_fails_unless_its_content_is_untouched(made: Path, tmp_path: Path) -> None:
    """A byte flipped past gzip's header (its time and OS bytes carry nothing): at 80 places spread over the
    archive, and at each of its last 600 bytes, where tar's padding lies, which tar itself never reads (only
    gzip's CRC, checked at the end of the stream, sees a change there). Deflate ignores a few bits (codes of
    symbols a block never uses): such a flip leaves every file as it was, and then verify rightly holds."""
    data = (made / "out/evidence.tar.gz").read_bytes()
    key = load_public(made / "keys/signing.pub")
    files = read_bundle(made / "out/evidence.tar.gz").files
    places = sorted({*range(10, len(data), len(data) // 80), *range(len(data) - 600, len(data))})
    target = tmp_path / "damaged.tar.gz"
    caught = 0
    for at in places:
        damaged = bytearray(data)
        damaged[at] ^= 0x01
        target.write_bytes(bytes(damaged))
        try:
            bundle = read_bundle(target)
        except BundleError:
            caught += 1
            continue
        if bundle.problems or verify(bundle, key).problems:
            caught += 1
        else:
            assert bundle.files == files, at
    assert caught > len(places) * 0.9


def test_an_archive_with_a_path_outside_or_a_link_is_not_a_bundle(made: Path, tmp_path: Path) -> None:
    files = read_bundle(made / "out/evidence.tar.gz").files
    target = tmp_path / "evil.tar.gz"
    write_archive(target, files, 0)
    with tarfile.open(target, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for member, data in members:
            tar.addfile(member, io.BytesIO(data))
        outside = tarfile.TarInfo("hds-evidence/../../escape.txt")
        outside.size = 1
        tar.addfile(outside, io.BytesIO(b"x"))
        link = tarfile.TarInfo("hds-evidence/hosts/link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/shadow"
        tar.addfile(link)
    target.write_bytes(buffer.getvalue())
    problems = _verify(target, made)
    assert any("outside the bundle's folder" in p for p in problems), problems
    assert "hosts/link: not a regular file (a link or a device)" in problems
    assert not (tmp_path.parent / "escape.txt").exists()


def test_bundles_from_the_same_captures_are_byte_identical(made: Path) -> None:
    sign = ["--sign-key", "keys/signing.key", "-q"]
    for name in ("again1", "again2"):
        done = _run("report", "r.json", *SCAN, "--bundle", f"out/{name}", *sign, cwd=made)
        assert done.returncode in (0, 1), done.stderr
    scanned = (made / "out/evidence.tar.gz").read_bytes()
    assert (made / "out/again1.tar.gz").read_bytes() == (made / "out/again2.tar.gz").read_bytes() == scanned
    # a bundle made from a bundle (its own catalogue) is the same bundle
    done = _run("report", "out/evidence.tar.gz", "--bundle", "out/again3", *sign, cwd=made)
    assert done.returncode in (0, 1), done.stderr
    assert (made / "out/again3.tar.gz").read_bytes() == scanned


def test_report_of_a_bundle_uses_its_catalogue_and_gives_its_junit(made: Path, tmp_path: Path) -> None:
    done = _run("report", "out/evidence.tar.gz", "--junit", str(tmp_path / "j.xml"), "-q", cwd=made)
    assert done.returncode in (0, 1), done.stderr
    assert (tmp_path / "j.xml").read_bytes() == (made / "out/evidence/junit.xml").read_bytes()
    done = _run("evaluate", "out/evidence", "--profile", "full", cwd=made)
    assert done.returncode == 2 and "judged with the catalogue it carries" in done.stderr
    # its HTML report names the bundle it was made from: the manifest's digest and the signer
    page = tmp_path / "r.html"
    assert _run("report", "out/evidence.tar.gz", "--html", str(page), "-q", cwd=made).returncode in (0, 1)
    manifest = (made / "out/evidence/manifest.json").read_bytes()
    assert hashlib.sha256(manifest).hexdigest() in page.read_text()
    assert json.loads(manifest)["predicate"]["signer"] in page.read_text()


def test_a_bundle_from_other_catalogue_options_is_refused(made: Path) -> None:
    sign = ["--sign-key", "keys/signing.key"]
    done = _run("report", "r.json", "--profile", "full", "--bundle", "out/wrong", *sign, cwd=made)
    assert done.returncode == 2 and "run.catalog_digest" in done.stderr
    assert not (made / "out/wrong").exists()


def test_third_party_dsse_verifiers_accept_the_envelope(made: Path, tmp_path: Path) -> None:
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import VerificationError
    from securesystemslib.signer import SSlibKey

    raw = (made / "out/evidence" / ENVELOPE).read_bytes()
    public = load_public(made / "keys/signing.pub")
    key = SSlibKey.from_crypto(public, keyid=fingerprint(public))
    envelope = Envelope.from_dict(json.loads(raw))
    assert envelope.verify([key], 1)
    assert envelope.pae() == pae(PAYLOAD_TYPE, (made / "out/evidence" / MANIFEST).read_bytes())
    envelope.payload = envelope.payload.replace(b"sha256", b"sha255", 1)
    with pytest.raises(VerificationError):
        envelope.verify([key], 1)
    # OpenSSL, from the public key file alone
    doc = json.loads(raw)
    (tmp_path / "pae").write_bytes(pae(doc["payloadType"], base64.b64decode(doc["payload"])))
    (tmp_path / "sig").write_bytes(base64.b64decode(doc["signatures"][0]["sig"]))
    argv = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(made / "keys/signing.pub"), "-rawin"]
    done = subprocess.run(
        [*argv, "-in", "pae", "-sigfile", "sig"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0 and "Signature Verified Successfully" in done.stdout, done.stderr


def test_bundle_input_errors_exit_2_before_any_work(made: Path, tmp_path: Path) -> None:
    cases = [
        (["scan", "--bundle", "b"], "a bundle is always signed: give --sign-key KEY"),
        (["scan", "--bundle", "b", "--sign-key", "keys/signing.pub"], "not an unencrypted PEM private key"),
        (["scan", "--bundle", "-", "--sign-key", "keys/signing.key"], "give a path, not '-'"),
        (["scan", "--sign-key", "keys/signing.key"], "signs a bundle: give --bundle PATH too"),
        (["verify", "nowhere", "--key", "keys/signing.pub"], "no such bundle"),
        (["verify", "r.json", "--key", "keys/signing.pub"], "not a bundle (neither its folder nor"),
        (["verify", "out/evidence", "--key", "keys/missing.pub"], "cannot read the public key"),
    ]
    for argv, said in cases:
        done = _run(*argv, cwd=made)
        assert done.returncode == 2 and said in done.stderr, (argv, done.stderr)
    assert not (made / "b").exists()


def test_a_folder_that_is_not_a_bundle_is_never_replaced(made: Path, tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    key = str(made / "keys/signing.key")
    done = _run("report", str(made / "r.json"), *SCAN, "--bundle", str(precious), "--sign-key", key, cwd=made)
    assert done.returncode == 3 and "is not an evidence bundle: not replaced" in done.stderr
    assert [p.name for p in precious.iterdir()] == ["notes.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".precious")]  # no temporary left
    # a bundle is replaced by the next one
    os.makedirs(tmp_path / "b")
    for _ in range(2):
        done = _run(
            "report",
            str(made / "r.json"),
            *SCAN,
            "--bundle",
            str(tmp_path / "b"),
            "--sign-key",
            key,
            cwd=made,
        )
        assert done.returncode in (0, 1), done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "b.tar.gz", "precious"]


def test_check_code_of_another_version_is_refused_unless_forced(bundle: Path, made: Path) -> None:
    files = read_bundle(bundle).files
    code = json.loads(files["catalog/code.json"])
    code["digest"] = "0" * 64
    files["catalog/code.json"] = json.dumps(code).encode()
    run = json.loads(files["run.json"])
    run["evaluation"]["code_digest"] = "0" * 64
    files["run.json"] = json.dumps(run).encode()
    result, _ = result_of(files)
    key = load_private(made / "keys/signing.key")
    for name, data in signed(
        {k: v for k, v in files.items() if k not in (MANIFEST, ENVELOPE)}, key, result.run
    ).items():
        (bundle / name).write_bytes(data)
    done = _run("verify", str(bundle), "--key", "keys/signing.pub", cwd=made)
    assert done.returncode == 1 and "the check code differs from this tool's" in done.stdout
    done = _run("verify", str(bundle), "--key", "keys/signing.pub", "--force", cwd=made)
    assert done.returncode == 0 and "judged again anyway (--force)" in done.stdout, done.stdout


def test_an_interrupted_scan_leaves_no_bundle(made: Path, tmp_path: Path) -> None:
    """SIGTERM mid-scan (the file-system walks keep it busy for seconds): exit 143, and nothing in the
    output folder, not even a temporary."""
    out = tmp_path / "out"
    argv = [str(EXE), "scan", "--bundle", str(out / "evidence"), "--sign-key", str(made / "keys/signing.key")]
    child = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _stdout, stderr = child.communicate(timeout=1.5)
    except subprocess.TimeoutExpired:
        child.terminate()
        _stdout, stderr = child.communicate(timeout=30)
    assert child.returncode == 143, stderr
    assert not out.exists() or not list(out.iterdir())


# Secrets planted in files the probe reads: none of their bytes may reach the bundle, folder or archive.
_KEY_BODY = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZWQyNTUxOQ"
_HASH = "$6$plantedsalt$Q1w2E3r4T5y6U7i8O9p0AsDfGhJkLzXcVbNm1234567890qwertyuiop./"
_BEARER = "ZmFrZS1iZWFyZXItdG9rZW4tZm9yLWhkcy10ZXN0cw"
_JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJoZHMtdGVzdCJ9.c2lnbmF0dXJlLW9mLXRoZS10ZXN0"
_URL_PASSWORD = "Pl4ntedUrlPassw0rd"
PLANTED = (_KEY_BODY, _HASH, _BEARER, _JWT, _URL_PASSWORD)


def test_secrets_planted_in_a_real_tree_reach_no_file_of_the_bundle(made: Path, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    from lab.chroot_tree import build_chroot

    cron = (
        f"0 1 * * * root curl -H 'Authorization: Bearer {_BEARER}' "
        f"https://backup:{_URL_PASSWORD}@store.example/ --data {_JWT}\n"
    )
    tree = build_chroot(
        tmp_path / "rootfs",
        {
            "/etc/os-release": 'ID=debian\nVERSION_ID="12"\n',
            "/etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
            "/etc/shadow": f"root:{_HASH}:19000:0:99999:7:::\n",
            # login.defs is read whole: its comments reach the captures, and the redaction
            "/etc/login.defs": f"ENCRYPT_METHOD SHA512\n# old root hash {_HASH}\n# {cron}"
            f"# -----BEGIN OPENSSH PRIVATE KEY-----\n# {_KEY_BODY}\n# -----END OPENSSH PRIVATE KEY-----\n",
            "/etc/cron.d/backup": cron,
            "/etc/sudoers": "Defaults use_pty\nroot ALL=(ALL:ALL) ALL\n"
            f"# -----BEGIN OPENSSH PRIVATE KEY-----\n# {_KEY_BODY}\n# -----END OPENSSH PRIVATE KEY-----\n",
        },
    )
    (tmp_path / "inv.py").write_text(f"images = [('@chroot/{tree}', {{'location_country': 'FR'}})]\n")
    key = str(made / "keys/signing.key")
    full = ["--profile", "full", "--skip-tag", "fs-walk"]
    done = _run("scan", "-i", "inv.py", *full, "--bundle", "out/b", "--sign-key", key, cwd=tmp_path)
    assert done.returncode in (0, 1), done.stderr
    files = read_bundle(tmp_path / "out/b").files
    seen = b"".join(files.values())
    with tarfile.open(tmp_path / "out/b.tar.gz") as tar:
        archived = b"".join(tar.extractfile(m).read() for m in tar.getmembers())  # type: ignore[union-attr]
    for secret in PLANTED:
        assert secret.encode() not in seen and secret.encode() not in archived, secret
        assert secret.encode() not in (tmp_path / "out/b.tar.gz").read_bytes()
    # they were read, and the captures say what was taken out
    [host] = result_of(files)[0].hosts
    removed = {kind for capture in host.captures for kind in capture.redactions}
    listed = json.loads(files["run.json"])["collection"]["redactions"]
    assert {k for item in listed for k in item["kinds"]} == removed
    assert {item["fact"] for item in listed} == {c.fact for c in host.captures if c.redactions}
    assert {"private-key", "password-hash", "bearer-token", "jwt", "url-credentials"} <= removed, removed
    assert b"[REDACTED-" in seen
    # scanned without --json: the bundle still holds the captures, and verifies
    done = _run("verify", "out/b", "--key", str(made / "keys/signing.pub"), cwd=tmp_path)
    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_scan_interrupted_after_some_hosts_bundles_them_marked_incomplete(
    made: Path, tmp_path: Path, signum: int, code: int
) -> None:
    """This machine is probed at once; a host that accepts TCP and never answers holds the scan. A signal
    then: the bundle holds the host done, signed and marked incomplete, and verify says so."""
    with socket.socket() as hanging:
        hanging.bind(("127.0.0.1", 0))
        hanging.listen(8)
        port = hanging.getsockname()[1]
        stuck = f"{{'ssh_hostname': '127.0.0.1', 'ssh_port': {port}, 'hds_activities': [1]}}"
        (tmp_path / "inv.py").write_text(
            f"hosts = [('@local', {{'hds_activities': [1]}}), ('stuck', {stuck})]\n"
        )
        key = str(made / "keys/signing.key")
        argv = [
            str(EXE),
            "scan",
            "-i",
            "inv.py",
            *SCAN,
            "--connect-timeout",
            "60",
            "--bundle",
            "b",
            "--sign-key",
            key,
        ]
        child = subprocess.Popen(
            argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        hanging.settimeout(60)
        connection, _ = hanging.accept()
        time.sleep(4)  # this machine's probe takes about a second
        child.send_signal(signum)
        _out, err = child.communicate(timeout=60)
        connection.close()
    assert child.returncode == code, err
    assert "1 of 2 host(s) probed before the signal" in err and "marked incomplete" in err, err
    files = read_bundle(tmp_path / "b").files
    result, run = result_of(files)
    assert run["incomplete"] is True and [h.name for h in result.hosts] == ["@local"]
    assert result.run.scope is not None and "stuck" in result.run.scope.outside
    done = _run("verify", "b.tar.gz", "--key", str(made / "keys/signing.pub"), cwd=tmp_path)
    assert done.returncode == 1, done.stdout
    assert done.stdout.splitlines()[0] == (
        "FAIL INCOMPLETE: the scan was interrupted: the bundle holds only some hosts"
    ), done.stdout


def test_run_json_keeps_collection_apart_from_evaluation(made: Path) -> None:
    """What was collected (the inventory's digest, each host's transport and the SHA-256 of what it printed)
    apart from what judged it (tool, catalogue and code digests, gate settings and policy files)."""
    run = json.loads((made / "out/evidence/run.json").read_text())
    collection, evaluation = run["collection"], run["evaluation"]
    [host] = collection["hosts"]
    record = json.loads((made / "out/evidence/hosts/0001-_local/captures.json").read_text())
    assert host["name"] == "@local" and host["connector"] == record["connector"]
    assert len(host["stream_sha256"]) == 64 and host["commands"] >= 1
    assert (
        collection["inventory_sha256"]
        == hashlib.sha256(Path(run["run"]["inventory"]).read_bytes()).hexdigest()
    )
    assert (
        evaluation["code_digest"]
        == json.loads((made / "out/evidence/catalog/code.json").read_text())["digest"]
    )
    assert evaluation["catalog_digest"] == run["run"]["catalog_digest"]
    assert {
        "fail_on",
        "thresholds_sha256",
        "baseline_sha256",
        "waivers_sha256",
        "attestations_sha256",
    } <= set(evaluation["gate"])


def test_evaluate_refuses_results_of_another_catalogue_unless_forced(made: Path, tmp_path: Path) -> None:
    done = _run("evaluate", str(made / "r.json"), "--profile", "full", cwd=tmp_path)
    assert done.returncode == 2 and "run.catalog_digest" in done.stderr and "--force" in done.stderr, (
        done.stderr
    )
    out = tmp_path / "forced.json"
    done = _run(
        "evaluate", str(made / "r.json"), "--profile", "full", "--force", "--json", str(out), cwd=tmp_path
    )
    assert done.returncode in (0, 1), done.stderr
    [why] = json.loads(out.read_text())["run"]["forced"]
    assert why.startswith("run.catalog_digest ")
    # another check code: refused the same way (the digest the results name is not this tool's)
    data = json.loads((made / "r.json").read_text())
    data["run"]["code_digest"] = "0" * 64
    (tmp_path / "old.json").write_text(json.dumps(data))
    done = _run("evaluate", "old.json", *SCAN, cwd=tmp_path)
    assert done.returncode == 2 and "run.code_digest 000000000000" in done.stderr, done.stderr


def test_reports_made_again_are_compared_with_reports(bundle: Path, made: Path) -> None:
    """The JUnit, HTML and OSCAL files altered and the bundle signed again: their digests hold, the verdicts
    follow; --reports makes them again from the verdicts judged again and names each one."""
    files = read_bundle(bundle).files
    files["junit.xml"] = files["junit.xml"].replace(b"<testsuites", b"<testsuites ", 1)
    files["report.html"] = files["report.html"].replace(b"HDS compliance report", b"HDS compliance rep0rt", 1)
    files["oscal-assessment-results.json"] = files["oscal-assessment-results.json"].replace(
        b"TEST", b"EXAMINE", 1
    )
    result, _ = result_of(files)
    rest = {k: v for k, v in files.items() if k not in (MANIFEST, ENVELOPE)}
    for name, data in signed(rest, load_private(made / "keys/signing.key"), result.run).items():
        (bundle / name).write_bytes(data)
    key = load_public(made / "keys/signing.pub")
    assert verify(read_bundle(bundle), key).problems == []
    problems = verify(read_bundle(bundle), key, reports=True).problems
    assert sorted(problems) == [
        f"{name}: not the report the verdicts judged again give"
        for name in ("junit.xml", "oscal-assessment-results.json", "report.html")
    ]
    done = _run("verify", str(bundle), "--key", "keys/signing.pub", "--reports", cwd=made)
    assert done.returncode == 1 and "report.html: not the report" in done.stdout


def test_the_results_json_comes_back_from_a_bundle_byte_for_byte(made: Path, tmp_path: Path) -> None:
    """A bundle holds the scan's JSON results in parts (run.json, each host's captures and verdicts):
    ``report BUNDLE --json`` gives back the very file the scan wrote."""
    done = _run("report", "out/evidence.tar.gz", "--json", str(tmp_path / "back.json"), "-q", cwd=made)
    assert done.returncode in (0, 1), done.stderr
    assert (tmp_path / "back.json").read_bytes() == (made / "r.json").read_bytes()
