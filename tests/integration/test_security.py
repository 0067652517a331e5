"""Security checks on the repository itself: no credentials are committed, and none can be by accident."""

from __future__ import annotations

import configparser
import re
import subprocess

from tests.support.paths import ROOT

SECRETS = {
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "AWS secret key assignment": re.compile(r"(?i)secret_access_key\s*[=:]\s*['\"]?[A-Za-z0-9/+]{30,}"),
    "private key": re.compile(r"-----BEGIN (RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----"),
    "password in a URL": re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:[^/\s@'\"]{3,}@"),
}


def tracked() -> list[str]:
    return subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()


def test_no_tracked_file_holds_a_credential() -> None:
    found = []
    for name in tracked():
        path = ROOT / name
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        text = path.read_bytes().decode("utf-8", errors="ignore")
        found += [f"{name}: {kind}" for kind, pattern in SECRETS.items() if pattern.search(text)]
    assert not found


def test_the_patterns_would_catch_a_leak() -> None:
    leak = (
        "aws_secret_access_key = " + "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY\nid " + "AKIA" + "IOSFODNN7EXAMPLE"
    )
    assert SECRETS["AWS access key id"].search(leak) and SECRETS["AWS secret key assignment"].search(leak)
    assert SECRETS["password in a URL"].search("s3://user:" + "hunter22@bucket")


def test_dvc_config_holds_no_credentials_and_the_local_config_is_ignored() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / ".dvc/config")
    keys = {key for section in config.sections() for key in config[section]}
    assert not keys & {"access_key_id", "secret_access_key", "session_token", "credentialpath", "password"}
    ignored = subprocess.run(["git", "check-ignore", ".dvc/config.local"], cwd=ROOT, capture_output=True, text=True)
    assert ignored.returncode == 0
