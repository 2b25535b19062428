"""PostgreSQL startup for `rdsgate connect`: SSLRequest and GSSENCRequest answered 'N', a cleartext password on
loopback (or trust), the server's version and the settings in the startup packet (as SET answers them).
Mixed into ``pgwire.PgClient``.
"""

from __future__ import annotations

import hmac
import re
import secrets
import struct
from typing import Any, Callable

from .gateway import Notice, TunnelError
from .pgframes import cstr, sqlstate

SSL_REQUEST, GSSENC_REQUEST, CANCEL_REQUEST = 80877103, 80877104, 80877102
# Settings the tunnel reports and keeps itself; everything else is the server's.
REPORTED = {"server_encoding": "UTF8", "client_encoding": "UTF8", "DateStyle": "ISO, MDY", "TimeZone": "UTC",
            "IntervalStyle": "postgres", "integer_datetimes": "on", "standard_conforming_strings": "on",
            "is_superuser": "off"}


class Startup:
    """Needs the client's ``wire``, ``sock``, ``tunnel``, ``dialect``, ``settings``, ``starting``, ``_setting``,
    ``_notices`` and ``_ready``."""

    wire: Any
    sock: Any
    tunnel: Any
    dialect: str
    settings: dict[str, str]
    starting: bool
    _setting: Callable[..., list[str]]
    _notices: Callable[..., None]
    _ready: Callable[[], None]

    def _startup(self) -> dict[str, str] | None:
        while True:
            data = self.wire.read_startup()
            (code,) = struct.unpack_from("!i", data)
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                self.sock.sendall(b"N")
                continue
            if code == CANCEL_REQUEST:
                self.tunnel.log("a cancel request was ignored: the API call runs to its end")
                return None
            if code >> 16 != 3:
                self._fatal("0A000", f"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}")
                return None
            break
        fields = data[4:].split(b"\0")
        parameters = {fields[i].decode(): fields[i + 1].decode() for i in range(0, len(fields) - 1, 2) if fields[i]}
        user = parameters.get("user", "")
        if parameters.get("replication", "false").lower() not in ("false", "0", "off", "no"):
            self._fatal("0A000", "replication connections are not supported through rdsgate connect: "
                                 "each statement is one API call")
            return None
        if self.tunnel.password is not None:
            self.wire.send(b"R", struct.pack("!i", 3))  # AuthenticationCleartextPassword
            self.wire.flush()
            kind, payload = self.wire.read_message()
            given = payload.rstrip(b"\0")
            if kind != b"p" or not hmac.compare_digest(given, self.tunnel.password.encode()):
                self._fatal("28P01", f'password authentication failed for user "{user}"')
                return None
        try:
            version = self._server_version()
        except TunnelError as exc:
            self._fatal(sqlstate(exc), f"rdsgate could not reach the connection: {exc.message}")
            return None
        self.wire.send(b"R", struct.pack("!i", 0))
        self.settings["application_name"] = parameters.get("application_name", "")
        self.starting = True  # settings from the startup packet are reported below, once
        notices = self._startup_settings(parameters)
        self.starting = False
        for name, value in {**REPORTED, "server_version": version, "session_authorization": user,
                            "IntervalStyle": self.settings.get("intervalstyle", "postgres"),
                            "application_name": self.settings["application_name"]}.items():
            self.wire.send(b"S", cstr(name) + cstr(value))
        self.wire.send(b"K", struct.pack("!ii", secrets.randbits(31), secrets.randbits(31)))
        self._notices(notices)
        self._ready()
        return parameters

    def _startup_settings(self, parameters: dict[str, str]) -> list[str]:
        """Settings in the startup packet (as parameters, or ``-c name=value`` in ``options``) get what SET gets;
        one the tunnel cannot honour is not applied, with a warning (the connection goes on: drivers send the
        machine's time zone, say, and ParameterStatus tells them the session's)."""
        settings = [(k, v) for k, v in parameters.items()
                    if k not in ("user", "database", "options", "replication", "application_name")]
        words = [re.sub(r"\\(.)", r"\1", w) for w in re.findall(r"(?:\\.|\S)+", parameters.get("options", ""))]
        for index, word in enumerate(words):
            if word.startswith("--"):
                name, _, value = word[2:].partition("=")
                name = name.replace("-", "_")
            elif word.startswith("-c") and word != "-c":
                name, _, value = word[2:].partition("=")
            elif index and words[index - 1] == "-c":
                name, _, value = word.partition("=")
            else:
                continue
            settings.append((name, value))
        notices: list[str] = []
        for name, value in settings:
            try:
                notices += self._setting(name.lower(), value, value.strip("'\"").strip().lower())
            except TunnelError as exc:
                notices.append(Notice(f"{name}={value} from the startup packet is not applied: {exc.message}"))
        return notices

    def _server_version(self) -> str:
        if self.dialect == "postgres":
            return str(self.tunnel.gateway.once("pg_version", "SHOW server_version"))
        return f"15.0 (rdsgate over MySQL {self.tunnel.gateway.once('mysql_version', 'SELECT VERSION()')})"

    def _fatal(self, sqlstate: str, message: str) -> None:
        self.wire.send(b"E", cstr("SFATAL") + cstr("VFATAL") + cstr("C" + sqlstate) + cstr("M" + message) + b"\0")
        self.wire.flush()
