"""`rdsgate connect --generate-password`: a random password, printed once, that psql and PyMySQL clients must give
(any local user can reach a loopback port, so a shared host needs one). The tunnel runs as its own process, in
front of the local HTTP server and the IAM-verifying test servers."""

import re
import subprocess

import pymysql
import pytest

from tests.conftest import DATABASE
from tests.local_processes import ROOT, Tunnel, psql, rdsgate


def generated(tunnel):
    found = re.findall(r"^  password: (\S+)  \(generated for this run; not shown again\)$", tunnel.text, re.M)
    assert len(found) == 1, tunnel.text
    return found[0]


def test_postgres_clients_need_the_generated_password(endpoint):
    tunnel = Tunnel("pg", endpoint, "--generate-password")
    try:
        password = generated(tunnel)
        assert len(password) >= 24 and "password required" in tunnel.text and "no password:" not in tunnel.text
        run = psql(tunnel, "-A", "-t", "-c", "select 1")
        assert run.returncode == 2 and "no password supplied" in run.stderr
        run = psql(tunnel, "-A", "-t", "-c", "select 1", password=password[:-1])
        assert run.returncode == 2 and "password authentication failed" in run.stderr
        run = psql(tunnel, "-A", "-t", "-c", "select 'in'", password=password)
        assert (run.returncode, run.stdout.strip()) == (0, "in"), run.stderr
        assert tunnel.stop() == 0
        assert tunnel.text.count(password) == 1  # the banner only: client log lines never repeat it
    finally:
        tunnel.kill()


def test_mysql_clients_need_the_generated_password_and_each_run_gets_its_own(endpoint):
    first, second = Tunnel("my", endpoint, "--generate-password"), Tunnel("my", endpoint, "--generate-password")
    try:
        password = generated(first)
        assert password != generated(second)
        with pytest.raises(pymysql.err.OperationalError) as refused:
            pymysql.connect(host="127.0.0.1", port=first.port, user="tester", password=generated(second),
                            database=DATABASE, connect_timeout=10)
        assert refused.value.args[0] == 1045
        with pymysql.connect(host="127.0.0.1", port=first.port, user="tester", password=password, database=DATABASE,
                             connect_timeout=10) as con, con.cursor() as cursor:
            cursor.execute("select 40 + 2")
            assert cursor.fetchone() == (42,)
    finally:
        first.kill()
        second.kill()


def test_without_a_password_the_banner_says_who_can_connect(endpoint):
    tunnel = Tunnel("pg", endpoint)
    try:
        assert "no password (trust)" in tunnel.text
        assert "no password: any user of this machine can connect to this port; on a shared host use " \
               "--generate-password" in tunnel.text
    finally:
        tunnel.kill()


def test_a_given_and_a_generated_password_are_exclusive():
    command = rdsgate("connect", "pg", "--endpoint", "http://127.0.0.1:9", "--password", "x", "--generate-password")
    run = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT,
                         env={"PYTHONPATH": f"{ROOT / 'functions'}:{ROOT / 'local'}:{ROOT}"})
    assert run.returncode == 2 and "not allowed with argument" in run.stderr
