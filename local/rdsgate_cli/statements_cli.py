"""`rdsgate statements`, `rdsgate result` and `rdsgate cancel`: asynchronous statements from the command line
(`rdsgate query --async` submits one). Downloads go straight to S3 through the pre-signed URL the API issues,
decompressed on the fly, with a progress line on standard error (rows and bytes, rate, ETA)."""

from __future__ import annotations

import argparse
import sys
import time
import urllib.request
import zlib
from typing import Any, BinaryIO, Callable

from rdsgate_client.api import CliError, path_for

from . import output
from .options import api_client

ENDED = ("FINISHED", "FAILED", "CANCELLED")
CHUNK = 1024 * 1024


def add_statements_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    sub = command("statements", statements, "list your asynchronous statements, or show one")
    sub.add_argument("id", nargs="?", help="a statement id: show its status")
    sub.add_argument("--json", action="store_true")

    sub = command("result", result, "download an asynchronous statement's result (waits until it ends)")
    sub.add_argument("id")
    sub.add_argument("--out", metavar="FILE", help="write to FILE (default: standard output)")
    sub.add_argument("--raw", action="store_true", help="keep the stored bytes (gzip stays compressed)")
    sub.add_argument("--no-wait", action="store_true", help="fail at once if the statement has not finished")
    sub.add_argument("--quiet", action="store_true", help="no progress line")

    sub = command("cancel", cancel, "cancel a running asynchronous statement")
    sub.add_argument("id")


def submit(client: Any, connection: str, body: dict[str, Any], fmt: str, compression: str) -> str:
    answer = client.post(path_for("connections", connection, "statements"),
                         {**body, "output": {"format": fmt, "compression": compression}})
    return answer["id"]


def statements(args: argparse.Namespace) -> int:
    client = api_client(args)
    if args.id:
        view = client.get(path_for("statements", args.id))
        print(output.as_json(view) if args.json else _describe(view))
        return 0 if view["status"] != "FAILED" else 1
    listed = client.get("/statements").get("statements", [])
    if args.json:
        print(output.as_json(listed))
    else:
        rows = [[s["id"], s["connection"], s["status"], s.get("submittedAt"), s.get("rowCount"), _size(s.get("bytes"))]
                for s in listed]
        print(output.table(["id", "connection", "status", "submitted", "rows", "bytes"], rows, null=""))
    return 0


def cancel(args: argparse.Namespace) -> int:
    answer = api_client(args).call("DELETE", path_for("statements", args.id))
    print(f"{answer['id']} {answer['status']}")
    return 0


def result(args: argparse.Namespace) -> int:
    client = api_client(args)
    view = _finished(client, args.id, wait=not args.no_wait, quiet=args.quiet)
    link = client.get(path_for("statements", args.id, "result") + "?format=url")
    sink: BinaryIO = open(args.out, "wb") if args.out else sys.stdout.buffer
    progress = Progress(view.get("rowCount"), link.get("storedBytes"), quiet=args.quiet or not sys.stderr.isatty() and not args.out)
    try:
        download(link["url"], sink, compressed=link["compression"] == "gzip" and not args.raw, progress=progress,
                 header_lines=1 if link["format"] == "csv" else 0)
    finally:
        if args.out:
            sink.close()
        progress.done()
    return 0


def _finished(client: Any, statement_id: str, *, wait: bool, quiet: bool) -> dict[str, Any]:
    started = time.monotonic()
    while True:
        view = client.get(path_for("statements", statement_id))
        status = view["status"]
        if status == "FINISHED":
            if not quiet and time.monotonic() - started > 1:
                print(file=sys.stderr)
            return view
        if status in ENDED:
            error = view.get("error") or {}
            raise CliError(f"statement {statement_id} is {status}" + (f": {error.get('code')}: {error.get('message')}" if error else ""))
        if not wait:
            raise CliError(f"statement {statement_id} is {status}; run rdsgate result again when it has finished")
        if not quiet:
            print(f"\r{status.lower()} for {time.monotonic() - started:.0f} s…", end="", file=sys.stderr, flush=True)
        time.sleep(1)


def download(url: str, sink: BinaryIO, *, compressed: bool, progress: Progress, header_lines: int = 0) -> None:
    """Stream the object into ``sink``; gzip members are decompressed one after another."""
    inflater = zlib.decompressobj(31) if compressed else None
    with urllib.request.urlopen(url, timeout=60) as response:
        while True:
            chunk = response.read(CHUNK)
            if not chunk:
                break
            progress.stored(len(chunk))
            data = chunk
            if inflater is not None:
                parts = []
                while data:
                    parts.append(inflater.decompress(data))
                    if inflater.eof:  # the next member starts in what is left
                        data, inflater = inflater.unused_data, zlib.decompressobj(31)
                    else:
                        data = b""
                data = b"".join(parts)
            sink.write(data)
            progress.lines(data.count(b"\n"), header_lines)


class Progress:
    """One line on standard error: rows and bytes so far, the rate, and the ETA when the total is known."""

    def __init__(self, rows: int | None, total_bytes: int | None, *, quiet: bool = False) -> None:
        self.total_rows, self.total_bytes, self.quiet = rows, total_bytes, quiet
        self.rows = self.bytes = 0
        self._header_left: int | None = None
        self.started = time.monotonic()
        self._shown = 0.0

    def stored(self, count: int) -> None:
        self.bytes += count

    def lines(self, count: int, header_lines: int) -> None:
        if self._header_left is None:
            self._header_left = header_lines
        skipped = min(self._header_left, count)
        self._header_left -= skipped
        self.rows += count - skipped
        now = time.monotonic()
        if not self.quiet and now - self._shown > 0.2:
            self._shown = now
            print("\r" + self.line(now), end="", file=sys.stderr, flush=True)

    def line(self, now: float | None = None) -> str:
        elapsed = max((now or time.monotonic()) - self.started, 1e-6)
        rate = self.bytes / elapsed
        rows = f"{self.rows:,}" + (f"/{self.total_rows:,}" if self.total_rows is not None else "") + " rows"
        size = _size(self.bytes) + (f"/{_size(self.total_bytes)}" if self.total_bytes else "")
        text = f"{rows}  {size}  {_size(rate)}/s"
        if self.total_bytes and rate > 0 and self.bytes < self.total_bytes:
            text += f"  ETA {(self.total_bytes - self.bytes) / rate:.0f} s"
        return text

    def done(self) -> None:
        if not self.quiet:
            print("\r" + self.line() + f"  done in {time.monotonic() - self.started:.1f} s", file=sys.stderr, flush=True)


def _size(count: float | None) -> str:
    if count is None:
        return ""
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"


def _describe(view: dict[str, Any]) -> str:
    lines = [f"{key}: {view[key]}" for key in ("id", "connection", "status", "submittedAt", "startedAt", "endedAt",
                                               "rowCount", "bytes", "format", "compression", "expiresAt") if view.get(key) is not None]
    if view.get("columns"):
        lines.append("columns: " + ", ".join(f"{c['name']} {c['type']}" for c in view["columns"]))
    if view.get("error"):
        lines.append(f"error: {view['error'].get('code')}: {view['error'].get('message')}")
    return "\n".join(lines)
