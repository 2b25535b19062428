"""The statements worker: runs one submitted statement into S3, and the Step Functions forms that use it.

``handler`` is the worker function's entry point, invoked asynchronously
(``InvocationType=Event``) with ``{"statement": id}``. Locally (``RDSGATE_WORKER=thread``:
``rdsgate serve`` and the tests) ``submit`` runs the same code in a thread of this process,
with a service and connections of its own.

The run: SUBMITTED → RUNNING (recording the database session, so that a cancel can reach it
from a second connection), rows streamed through ``QueryService.stream`` into a
``ResultWriter``, then FINISHED with the counts and columns, or FAILED with the error as the
API reports it. A cancel (DELETE) marks the item CANCELLED; a watcher thread sees it within
half a second, cancels the statement on the server and the partial output is discarded.
With a ``taskToken`` the run ends with ``SendTaskSuccess`` (the S3 pointer) or
``SendTaskFailure`` (the error's Step Functions name).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Callable

from . import errors
from .access import Caller
from .encoding import json_loads
from .errors import InternalError, InvalidRequest, RdsgateError
from .request import QUERY_FIELDS, QueryRequest, parse_query
from .edge import STEP_FUNCTIONS_LIMIT_BYTES, remaining_ms, step_functions_name
from .runtime import LOGGER, SERVICE, ServiceHolder
from .service import Invocation
from .result_writer import RecordSink, ResultWriter, discard_result
from .statements import (
    CLIENTS, MAX_EXPORT_ROWS, Output, StatementCancelled, StatementSettings, StatementStore, new_statement_id, parse_output,
)

__all__ = ["LOCAL_RUNNER", "invoke_to_s3", "run_submitted", "store_for", "submit_statement", "wants_s3"]

WATCH_INTERVAL_SECONDS = 0.5
NO_RESULT_LIMIT = 10**15  # results go to S3: no response size applies
INVOKE_FIELDS = frozenset({"output", "taskToken"})  # beside the query's own fields and the invoke envelope

WORKER_SERVICE = ServiceHolder(LOGGER)  # the worker function's own, warm across invocations


def handler(event: Any, context: Any) -> dict[str, Any] | None:
    """Lambda entry point of the worker function: ``{"statement": id}``."""
    if not isinstance(event, dict) or not isinstance(event.get("statement"), str):
        LOGGER.error("worker: unexpected event", extra={"keys": sorted(event) if isinstance(event, dict) else None})
        return None
    return run_submitted(event["statement"], WORKER_SERVICE, remaining=lambda: remaining_ms(context),  # asked when the run starts
                         request_id=getattr(context, "aws_request_id", None))


def store_for(settings: StatementSettings, clients: Any = CLIENTS) -> StatementStore:
    return StatementStore(settings.table, clients.get("dynamodb"), expiry_days=settings.expiry_days)


def max_rows_for(request: QueryRequest) -> int:
    return request.max_rows or MAX_EXPORT_ROWS


def run_submitted(
    statement_id: str, holder: ServiceHolder, *, remaining: Callable[[], float | None] | None = None,
    request_id: str | None = None, settings: StatementSettings | None = None, clients: Any = CLIENTS,
) -> dict[str, Any] | None:
    """Run a SUBMITTED statement to its end; returns the FINISHED summary, or None."""
    settings = (settings or StatementSettings.resolve()).require()
    store = store_for(settings, clients)
    item = store.get(statement_id)
    if item is None or item["status"] != "SUBMITTED":
        return None  # cancelled before it started, or run already (an event delivered twice)
    s3 = clients.get("s3")
    output = Output(**item["output"])
    cancelled = threading.Event()
    watcher = _Watcher(store, statement_id, cancelled, holder, item["connection"])
    writer = ResultWriter(s3, settings.bucket, item["key"], output=output, kms_key=settings.kms_key,
                          on_upload=lambda upload_id: store.uploading(statement_id, upload_id))
    started = time.monotonic()
    try:
        request = parse_query(item["request"], allowed=QUERY_FIELDS)
        if output.format == "csv":
            request = _as_arrays(request)
        invocation = Invocation(
            caller=Caller(arn=item.get("caller"), governed=bool(item.get("governed", True))),
            result_limit_bytes=NO_RESULT_LIMIT,
            request_id=request_id or statement_id,
            remaining_ms=remaining() if remaining is not None else None,
            route="statement worker",
            audit_context={"statementId": statement_id},
        )
        if item.get("review"):  # an approved review (rdsgate.reviews): the gate checks it runs what was approved
            from .reviews.run import approved_run

            request, invocation = approved_run(item["review"], request, invocation)

        def on_connection(connection: Any) -> None:
            backend = connection.backend_id()
            if not store.started(statement_id, backend):
                raise StatementCancelled("the statement was cancelled before it started")
            watcher.start(backend)

        sink = RecordSink(writer, cancelled.is_set)
        document = holder.get().stream(item["connection"], request, invocation, sink,
                                       max_rows=max_rows_for(request), on_connection=on_connection)
        if cancelled.is_set():
            raise StatementCancelled("the statement was cancelled")
        summary = writer.finish()
        summary.update(columns=document["columns"], updatedRows=document.get("updatedRows"),
                       truncated=document.get("truncated"), durationMs=document.get("durationMs"))
        if not store.finished(statement_id, summary):  # cancelled at the last moment: nothing is kept
            discard_result(s3, settings.bucket, item["key"], writer.upload_id)
            _notify_failure(item, StatementCancelled("the statement was cancelled"), clients)
            return None
        LOGGER.info("statement finished", extra={"statement": statement_id, "rows": summary["rowCount"],
                                                 "bytes": summary["bytes"], "seconds": round(time.monotonic() - started, 3)})
        pointer = pointer_for(settings, item["key"], summary, statement_id, output)
        _notify_success(item, pointer, clients)
        return summary
    except BaseException as exc:
        writer.abort()
        current = store.get(statement_id)
        if cancelled.is_set() or (current is not None and current["status"] == "CANCELLED"):
            _notify_failure(item, StatementCancelled("the statement was cancelled"), clients)
            return None
        error = exc if isinstance(exc, RdsgateError) else InternalError("rdsgate failed unexpectedly; see the function's log")
        if not isinstance(exc, RdsgateError):
            LOGGER.error("statement failed unexpectedly", extra={"statement": statement_id, "exception": type(exc).__name__})
        store.failed(statement_id, error.to_dict())
        _notify_failure(item, error, clients)
        if not isinstance(exc, Exception):
            raise
        return None
    finally:
        watcher.stop()


def pointer_for(settings: StatementSettings, key: str, summary: dict[str, Any], statement_id: str | None, output: Output) -> dict[str, Any]:
    """What Step Functions receives instead of records."""
    pointer = {
        "s3Uri": f"s3://{settings.bucket}/{key}",
        "rowCount": summary["rowCount"],
        "bytes": summary["bytes"],
        "storedBytes": summary.get("storedBytes"),
        "columns": summary.get("columns"),
        "format": output.format,
        "compression": output.compression,
        "truncated": summary.get("truncated"),
    }
    if statement_id:
        pointer["id"] = statement_id
    return pointer


def _as_arrays(request: QueryRequest) -> QueryRequest:
    from dataclasses import replace

    return replace(request, shape="arrays")


class _Watcher:
    """Polls the status item while the statement runs; on CANCELLED, cancels it on the server."""

    def __init__(self, store: StatementStore, statement_id: str, cancelled: threading.Event, holder: ServiceHolder, connection: str) -> None:
        self.store, self.statement_id, self.cancelled, self.holder, self.connection = store, statement_id, cancelled, holder, connection
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, backend: int | None) -> None:
        self._thread = threading.Thread(target=self._run, args=(backend,), name="rdsgate-statement-watch", daemon=True)
        self._thread.start()

    def _run(self, backend: int | None) -> None:
        while not self._stop.wait(WATCH_INTERVAL_SECONDS):
            try:
                item = self.store.get(self.statement_id)
            except Exception:  # a throttled read: look again next time
                continue
            if item is not None and item["status"] == "CANCELLED":
                self.cancelled.set()
                if backend is not None and not self._stop.is_set():
                    try:
                        self.holder.get().cancel_backend(self.connection, backend)
                    except Exception as exc:  # the DELETE handler cancels too
                        LOGGER.info("cancel from the worker failed", extra={"exception": type(exc).__name__})
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def _notify_success(item: dict[str, Any], pointer: dict[str, Any], clients: Any) -> None:
    token = item.get("taskToken")
    if token:
        clients.get("stepfunctions").send_task_success(taskToken=token, output=json.dumps(pointer))


def _notify_failure(item: dict[str, Any], error: RdsgateError, clients: Any) -> None:
    token = item.get("taskToken")
    if token:
        clients.get("stepfunctions").send_task_failure(taskToken=token, error=step_functions_name(error), cause=error.message[:32768])


# -- submission: asynchronous invocation, or a thread here --------------------------------------


class LocalRunner:
    """The worker in threads of this process, each with its own service (the API's is not shared)."""

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def submit(self, statement_id: str, settings: StatementSettings) -> None:
        thread = threading.Thread(target=self._run, args=(statement_id, settings), name=f"rdsgate-worker-{statement_id[:8]}", daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _run(self, statement_id: str, settings: StatementSettings) -> None:
        holder = ServiceHolder(LOGGER)
        deadline = time.monotonic() + settings.worker_timeout_seconds
        try:
            run_submitted(statement_id, holder, remaining=lambda: (deadline - time.monotonic()) * 1000, settings=settings)
        except Exception as exc:  # noqa: BLE001 - logged; the item says FAILED
            LOGGER.error("local worker failed", extra={"statement": statement_id, "exception": type(exc).__name__})
        finally:
            holder.reset()

    def join(self, timeout: float = 60) -> None:
        """Wait for every running statement (tests, and the local stack's stop)."""
        end = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(end - time.monotonic(), 0))


LOCAL_RUNNER = LocalRunner()


def submit(statement_id: str, settings: StatementSettings, clients: Any = CLIENTS) -> None:
    """Start the worker on a submitted statement."""
    if settings.local_worker:
        LOCAL_RUNNER.submit(statement_id, settings)
    elif settings.worker_function:
        clients.get("lambda").invoke(FunctionName=settings.worker_function, InvocationType="Event",
                                     Payload=json.dumps({"statement": statement_id}).encode())
    else:
        raise InvalidRequest("asynchronous statements are not enabled (no worker: RDSGATE_WORKER_FUNCTION is not set)")


def submit_statement(
    name: str, request_document: dict[str, Any], output: Output, *, caller: str | None, governed: bool,
    task_token: str | None = None, settings: StatementSettings | None = None, clients: Any = CLIENTS,
    review: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Record a statement (SUBMITTED) and start the worker on it; the status item."""
    settings = (settings or StatementSettings.resolve()).require()
    store = store_for(settings, clients)
    statement_id = new_statement_id()
    item = store.create(connection=name, caller=caller, request=request_document, output=output,
                        key=settings.key_for(statement_id, output), statement_id=statement_id, task_token=task_token,
                        deadline_seconds=settings.worker_timeout_seconds, governed=governed, review=review)
    try:
        submit(statement_id, settings, clients)
    except Exception as exc:
        failure = exc if isinstance(exc, RdsgateError) else errors.DatabaseUnavailable("the worker could not be started", retry_after=1)
        store.failed(statement_id, failure.to_dict())
        raise failure from None
    return item


# -- Step Functions: results in S3 instead of the payload ---------------------------------------


def wants_s3(event: dict[str, Any], name: str) -> bool:
    """The invoke input asks for S3 output or the callback pattern, or the definition spills large results."""
    if "output" in event or "taskToken" in event:
        return True
    extras = dict(SERVICE.get().catalog.get(name).extras)
    return extras.get("spill_to_s3") is True


def invoke_to_s3(event: dict[str, Any], name: str, invocation: Invocation, envelope: frozenset[str]) -> dict[str, Any]:
    """The invoke handler's S3 forms.

    - ``"taskToken"`` (``lambda:invoke.waitForTaskToken``): the statement is handed to the worker,
      which ends with SendTaskSuccess (the pointer) or SendTaskFailure; returns ``{"id", "status"}``.
    - ``"output": {"s3": true, …}``: runs here, into S3, and returns ``{"s3Uri", "rowCount", "bytes", "columns", …}``.
    - a definition with ``spill_to_s3: true``: the result inline when it fits Step Functions' payload, else the pointer.
    """
    document = {k: v for k, v in event.items() if k not in envelope and k not in INVOKE_FIELDS}
    request = parse_query(document, allowed=QUERY_FIELDS)
    raw_output = event.get("output")
    if raw_output is not None and isinstance(raw_output, dict) and "s3" in raw_output and not isinstance(raw_output["s3"], bool):
        raise InvalidRequest("output.s3: must be true or false", field="output")
    output = parse_output(raw_output)
    token = event.get("taskToken")
    if token is not None:
        if not isinstance(token, str) or not token:
            raise InvalidRequest("taskToken: must be the task token string ($$.Task.Token)", field="taskToken")
        from .reviews.gate import hold_for_review  # a statement that needs a review holds the token until it is decided

        held = hold_for_review(SERVICE.get(), name, request, invocation, token)
        if held is not None:
            return held
        item = submit_statement(name, document, output, caller=invocation.caller.arn, governed=False, task_token=token)
        return {"id": item["id"], "status": item["status"]}
    settings = StatementSettings.resolve().require()
    # Without "s3": true the result comes back inline when it fits (JSON Lines only), else as the pointer.
    spill_only = not (isinstance(raw_output, dict) and raw_output.get("s3") is True)
    statement_id = new_statement_id()
    key = settings.key_for(statement_id, output)
    s3 = CLIENTS.get("s3")
    writer = ResultWriter(s3, settings.bucket, key, output=output, kms_key=settings.kms_key)
    if output.format == "csv":
        request = _as_arrays(request)
    sink = RecordSink(writer)
    try:
        result = SERVICE.get().stream(name, request, invocation, sink, max_rows=max_rows_for(request))
        if spill_only and output.format == "jsonl":
            text = writer.inline_text(STEP_FUNCTIONS_LIMIT_BYTES - 8192)
            if text is not None:
                records = [json_loads(line) for line in text.splitlines()]
                return {**result, "records": records, "rowCount": len(records)}
        summary = writer.finish()
    except BaseException:
        writer.abort()
        raise
    summary.update(columns=result["columns"], truncated=result.get("truncated"))
    pointer = pointer_for(settings, key, summary, None, writer.output)
    pointer["updatedRows"] = result.get("updatedRows")
    return pointer
