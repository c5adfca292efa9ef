"""deploy/rapport@.service, the systemd unit the README's deployment section installs: well-formed, starting
`rapport serve` with options it has, its settings (tokens) from an EnvironmentFile and none written in it."""

import configparser
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.test_serve import RAPPORT, clean_env

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
UNIT = DEPLOY / "rapport@.service"
# The keys this unit may use, by section (a typo is an error here, where systemd would only warn and ignore it).
KNOWN = {
    "Unit": {"Description", "Documentation", "After", "Wants", "Requires", "Before"},
    "Service": {"Type", "User", "Group", "WorkingDirectory", "EnvironmentFile", "ExecStart", "Restart", "RestartSec",
                "RestartPreventExitStatus", "TimeoutStopSec", "NoNewPrivileges", "PrivateTmp", "ProtectSystem",
                "ProtectHome", "ReadWritePaths"},
    "Install": {"WantedBy"},
}
# A token, a token or secret setting with a value, a database URL with a password in it.
SECRET_LOOKING = re.compile(r"xox[a-z]-|xapp-|SLACK_[A-Z_]*(TOKEN|SECRET)[ \t]*=[ \t]*\S|://[^:/@\s]+:[^@\s]+@")


def parsed_unit() -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=True, interpolation=None, delimiters=("=",),
                                     comment_prefixes=("#", ";"), empty_lines_in_values=False)
    unit.optionxform = str  # systemd's keys are case-sensitive
    unit.read_string(UNIT.read_text(), source=str(UNIT))  # a repeated section or key raises
    return unit


def test_the_unit_has_its_three_sections_known_keys_and_serves_with_options_rapport_has():
    unit = parsed_unit()
    assert unit.sections() == ["Unit", "Service", "Install"]
    for section in unit.sections():
        assert set(unit[section]) <= KNOWN[section], set(unit[section]) - KNOWN[section]
    service = unit["Service"]
    argv = shlex.split(service["ExecStart"])
    assert Path(argv[0]).is_absolute() and Path(argv[0]).name == "rapport" and argv[1] == "serve"
    assert service["EnvironmentFile"].startswith("/") and service["RestartPreventExitStatus"] == "2"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    # Every option it passes is one `rapport serve` has; the instance name (%i) is the port.
    usage = subprocess.run([RAPPORT, "serve", "--help"], env=clean_env(COLUMNS="200"), capture_output=True, text=True,
                           timeout=60)
    assert usage.returncode == 0, usage.stderr
    for option in (arg for arg in argv[2:] if arg.startswith("--")):
        assert option in usage.stdout, f"rapport serve has no {option}"
    assert argv[argv.index("--port") + 1] == "%i" and argv[argv.index("--log-format") + 1] == "json"


def test_no_secret_is_written_in_the_unit_or_the_example_environment():
    assert "Environment" not in parsed_unit()["Service"]  # settings live in the EnvironmentFile only
    for path in (UNIT, DEPLOY / "rapport.env.example"):
        found = SECRET_LOOKING.search(path.read_text())
        assert found is None, f"{path.name}: {found.group(0)}"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verifies_an_instance_of_the_unit(tmp_path):
    # The real binary in place of /opt/rapport's, so systemd can check that ExecStart is executable.
    text = UNIT.read_text().replace(shlex.split(parsed_unit()["Service"]["ExecStart"])[0], RAPPORT)
    (tmp_path / UNIT.name).write_text(text)
    done = subprocess.run(["systemd-analyze", "verify", "rapport@3000.service"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    ours = [line for line in done.stderr.splitlines() if "rapport@" in line]
    assert done.returncode == 0 and not ours, done.stderr
