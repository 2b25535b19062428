"""Integration tests: real PostgreSQL and MariaDB servers verifying RDS IAM tokens through PAM."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time

import boto3
import pg8000.native
import pymysql
import pytest

from rdsgate_devstack.iam_verifier import VerifierConfig
from rdsgate_devstack.pki import create_pki
from rdsgate_devstack.servers import PAM_DIR, MariaDBServer, MissingDependency, PostgresServer, cleanup_stale, find

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="local IAM servers need root (PAM service files)")

TRUSTED = ("ASIALOCALFAKEKEY0001", "local/fake+secret-0001", "FQoGZXIvYXdzEFAKEsession/" + "t" * 800)
UNTRUSTED = ("ASIALOCALFAKEKEY0002", "local/fake+secret-0002", "FQoGZXIvYXdzEFAKEsession/" + "u" * 800)
REGION = "us-east-1"


def token(server, user: str, creds=TRUSTED, host: str = "localhost", port: int | None = None) -> str:
    key, secret, session = creds
    client = boto3.client(
        "rds", region_name=REGION, aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=session
    )
    return client.generate_db_auth_token(DBHostname=host, Port=port or server.port, DBUsername=user, Region=REGION)


def login(server, user: str, password: str, *, tls: bool = True, host: str = "localhost") -> str:
    """Log in over TCP like the gateway does and return ``current_user``.

    ``tls=False`` really means plain TCP: pg8000 1.31 treats ``ssl_context=None`` as
    "prefer" (unverified TLS when the server offers it), so plain TCP needs
    ``ssl_context=False``; likewise PyMySQL >= 1.1.2 without ssl options tries
    unverified TLS ("PREFERRED"), so plain TCP needs ``ssl_disabled=True``.
    """
    ctx = ssl.create_default_context(cafile=server.ca_file) if tls else False
    if isinstance(server, PostgresServer):
        conn = pg8000.native.Connection(
            user, host=host, port=server.port, password=password, database="postgres", ssl_context=ctx, timeout=10
        )
        try:
            return conn.run("SELECT current_user")[0][0]
        finally:
            conn.close()
    # PyMySQL answers the server's switch to mysql_clear_password by sending the
    # password as-is (no opt-in flag like libmysqlclient's --enable-cleartext-plugin),
    # even without TLS: REQUIRE SSL then refuses the account after authentication.
    conn = pymysql.connect(
        host=host, port=server.port, user=user, password=password, connect_timeout=10, read_timeout=10,
        **({"ssl": ctx} if tls else {"ssl_disabled": True}),
    )
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT SUBSTRING_INDEX(CURRENT_USER(), '@', 1)")
            return cur.fetchone()[0]
    finally:
        conn.close()


# pg8000 raises DatabaseError (SQLSTATE 28000/28P01), PyMySQL OperationalError (1045).
REFUSED = (pg8000.native.DatabaseError, pymysql.err.OperationalError)


def assert_refused(server, user, password, *, verifier_reason: str | None = None, pg_message: str = "", **kwargs):
    """Assert the login fails; optionally that the PAM verifier logged ``verifier_reason``."""
    with open(server.log_path, "rb") as f:
        log_offset = f.seek(0, os.SEEK_END)
    with pytest.raises(REFUSED) as info:
        login(server, user, password, **kwargs)
    message = str(info.value)
    expected = ("28000", "28P01") if isinstance(server, PostgresServer) else ("1045",)
    assert any(code in message for code in expected), message
    if isinstance(server, PostgresServer):
        assert pg_message in message
    with open(server.log_path, "rb") as f:
        f.seek(log_offset)
        new_log = f.read().decode(errors="replace")
    if verifier_reason is not None:
        assert f"rejected login for user '{user}': {verifier_reason}" in new_log, new_log
    assert password not in new_log  # the token is never logged


@pytest.fixture(scope="module", params=["postgres", "mariadb"])
def server(request):
    cls = PostgresServer if request.param == "postgres" else MariaDBServer
    started = time.monotonic()
    with cls() as srv:
        srv.startup_seconds = time.monotonic() - started
        srv.create_iam_user("iam_alice")
        srv.create_iam_user("iam_bob")
        srv.create_password_user("static_carol", "carol-pa'ss\"word")
        srv.trust(*TRUSTED)
        yield srv


def test_server_basics(server):
    assert server.running and server.port and server.server_version
    assert os.path.isfile(server.ca_file)
    assert os.path.isfile(os.path.join(PAM_DIR, server.pam_service))
    assert f"localhost:{server.port}" in server.verifier.endpoints
    print(f"{type(server).__name__} {server.server_version} started in {server.startup_seconds:.2f}s")


def test_iam_user_logs_in_with_a_token_over_tls(server):
    # GIVEN an IAM user and a token signed with trusted (session) credentials
    tok = token(server, "iam_alice")
    assert len(tok) > 1000  # far beyond pam_exec's 511-byte limit
    # WHEN it logs in over TLS THEN the server authenticates it as that user
    assert login(server, "iam_alice", tok) == "iam_alice"
    # AND the same token may be reused until it expires, also via 127.0.0.1
    assert login(server, "iam_alice", tok) == "iam_alice"
    assert login(server, "iam_bob", token(server, "iam_bob", host="127.0.0.1"), host="127.0.0.1") == "iam_bob"


def test_token_signed_with_an_untrusted_key_is_refused(server):
    assert_refused(
        server, "iam_alice", token(server, "iam_alice", creds=UNTRUSTED),
        verifier_reason="unknown access key", pg_message="PAM authentication failed",
    )


def test_newly_trusted_key_works_without_restart(server):
    key, secret, session = UNTRUSTED[0].replace("0002", "0003"), "another/secret", None
    tok = token(server, "iam_alice", creds=(key, secret, session))
    assert_refused(server, "iam_alice", tok, verifier_reason="unknown access key")
    server.trust(key, secret, session)
    assert login(server, "iam_alice", tok) == "iam_alice"
    server.verifier.untrust(key)
    assert_refused(server, "iam_alice", tok, verifier_reason="unknown access key")


def test_token_with_another_session_token_is_refused(server):
    key, secret, _ = TRUSTED
    tok = token(server, "iam_alice", creds=(key, secret, "some-other-session"))
    assert_refused(server, "iam_alice", tok, verifier_reason="session token mismatch")


def test_token_for_another_user_is_refused(server):
    assert_refused(
        server, "iam_alice", token(server, "iam_bob"),
        verifier_reason="token is for another user", pg_message="PAM authentication failed",
    )


def test_token_for_another_port_is_refused(server):
    # A genuine token, but signed for another server (RDS checks the endpoint too).
    for tok in (token(server, "iam_alice", port=server.port + 1), token(server, "iam_alice", host="otherdb")):
        assert_refused(server, "iam_alice", tok, verifier_reason="token is for another endpoint")
    # A token edited to name this endpoint no longer matches its signature.
    edited = token(server, "iam_alice", port=server.port + 1).replace(
        f"localhost:{server.port + 1}/", f"localhost:{server.port}/", 1
    )
    assert_refused(server, "iam_alice", edited, verifier_reason="signature mismatch")


def test_iam_user_without_tls_is_refused(server):
    # PostgreSQL: the "host ... +rds_iam ... reject" line. MariaDB: the token is
    # accepted by PAM, then the account's REQUIRE SSL refuses the session.
    assert_refused(server, "iam_alice", token(server, "iam_alice"), tls=False, pg_message="no encryption")


def test_iam_user_cannot_use_a_password(server):
    assert_refused(server, "iam_alice", "not-a-token", verifier_reason="malformed token")


def test_password_user_logs_in_over_tls(server):
    assert login(server, "static_carol", "carol-pa'ss\"word") == "static_carol"
    assert_refused(server, "static_carol", "wrong-password")


def test_password_user_without_tls_is_refused(server):
    assert_refused(server, "static_carol", "carol-pa'ss\"word", tls=False, pg_message="no encryption")


def test_restart_keeps_port_data_and_users(server):
    # GIVEN a database with a row and a granted IAM user
    server.create_database("keepme")
    server.grant_all("iam_alice", "keepme")
    server.execute("CREATE TABLE t (v text)", database="keepme")
    server.execute("INSERT INTO t VALUES ('survives')", database="keepme")
    port, pid = server.port, server.pid
    # WHEN the server restarts
    server.restart()
    # THEN it is a new process on the same port, with the same data and logins
    assert server.port == port and server.pid != pid
    assert server.execute("SELECT v FROM t", database="keepme")[0][0] == "survives"
    assert login(server, "iam_alice", token(server, "iam_alice")) == "iam_alice"
    assert login(server, "static_carol", "carol-pa'ss\"word") == "static_carol"


def test_iam_user_can_use_a_granted_database(server):
    server.create_database("appdb")
    server.grant_all("iam_bob", "appdb")
    ctx = ssl.create_default_context(cafile=server.ca_file)
    tok = token(server, "iam_bob")
    if isinstance(server, PostgresServer):
        conn = pg8000.native.Connection("iam_bob", host="localhost", port=server.port, password=tok,
                                        database="appdb", ssl_context=ctx)
        conn.run("CREATE TABLE items (id int)")
        conn.run("INSERT INTO items VALUES (1), (2)")
        assert conn.run("SELECT count(*) FROM items")[0][0] == 2
        conn.close()
    else:
        conn = pymysql.connect(host="localhost", port=server.port, user="iam_bob", password=tok,
                               database="appdb", ssl=ctx, autocommit=True)
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE items (id int)")
            cur.execute("INSERT INTO items VALUES (1), (2)")
            cur.execute("SELECT count(*) FROM items")
            assert cur.fetchone()[0] == 2
        conn.close()


@pytest.mark.parametrize("cls", [PostgresServer, MariaDBServer])
def test_shared_pki_and_verifier_then_stop_leaves_nothing(cls, tmp_path_factory):
    # GIVEN a CA and verifier config shared by the caller, in a folder servers can traverse
    shared = tmp_path_factory.mktemp("shared")
    for folder in (shared, shared.parent, shared.parent.parent):
        os.chmod(folder, os.stat(folder).st_mode | 0o011)
    pki = create_pki(str(shared / "pki"))
    verifier = VerifierConfig(str(shared / "verifier.json"))
    verifier.trust(*TRUSTED)
    srv = cls(pki=pki, verifier=verifier).start()
    workdir, pam_file, port = srv.workdir, os.path.join(PAM_DIR, srv.pam_service), srv.port
    pid = srv.pid
    try:
        assert srv.ca_file == pki.ca_cert
        srv.create_iam_user("iam_dave")
        assert login(srv, "iam_dave", token(srv, "iam_dave")) == "iam_dave"
    finally:
        srv.stop()
    # THEN the process, work folder, PAM service and endpoints are gone; the shared files stay
    assert not srv.running
    assert not os.path.exists(workdir) and not os.path.exists(pam_file)
    assert not os.path.exists(f"/proc/{pid}")
    assert f"localhost:{port}" not in VerifierConfig(verifier.path).endpoints
    assert os.path.exists(pki.ca_cert) and TRUSTED[0] in VerifierConfig(verifier.path).credentials
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_unreadable_shared_verifier_config_is_a_clear_error(tmp_path):
    # GIVEN a verifier config inside pytest's tmp_path (mode 0700: postgres cannot read it)
    os.chmod(tmp_path, 0o700)
    verifier = VerifierConfig(str(tmp_path / "verifier.json"))
    srv = PostgresServer(verifier=verifier)
    # WHEN the server starts THEN it says why, and leaves nothing behind
    with pytest.raises(RuntimeError, match="not readable by OS user postgres"):
        srv.start()
    assert srv.workdir is None and not os.path.exists(os.path.join(PAM_DIR, srv.pam_service))


@pytest.mark.parametrize("cls", [PostgresServer, MariaDBServer])
def test_without_iam_password_logins_still_work(cls):
    with cls(iam=False) as srv:
        assert not os.path.exists(os.path.join(PAM_DIR, srv.pam_service))
        srv.create_password_user("plain_erin", "erin-pw")
        assert login(srv, "plain_erin", "erin-pw") == "plain_erin"


def test_servers_left_by_a_killed_run_are_cleaned_up():
    # GIVEN a Python process that started a server and was killed without stop()
    code = (
        "import time; from rdsgate_devstack.servers import PostgresServer\n"
        "s = PostgresServer().start(); print(s.workdir, s.pid, s.pam_service, flush=True); time.sleep(120)"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env, text=True)
    try:
        workdir, pid, service = child.stdout.readline().split()
    finally:
        child.kill()
        child.wait()
    assert os.path.isdir(workdir) and os.path.exists(f"/proc/{pid}")  # the orphan still runs
    # WHEN the next run cleans up
    removed = cleanup_stale()
    # THEN the orphaned server, its folder and its PAM service are gone
    assert workdir in removed
    assert not os.path.exists(workdir) and not os.path.exists(os.path.join(PAM_DIR, service))
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":  # killed; reaped later by init
                break
        time.sleep(0.05)
    else:
        assert not os.path.exists(f"/proc/{pid}")


def test_missing_binary_names_the_apt_package():
    with pytest.raises(MissingDependency, match="apt-get install libpam-python"):
        find(["/nonexistent/pam_python.so"], "libpam-python", "pam_python.so")
