"""What the outside hears of a review: the optional SNS topic, and the failure of a Step Functions task it holds.

Neither ever decides a review: a notice is sent after the item is written, and a failed publish is ignored.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from ..errors import RdsgateError
from .item import CLIENTS, ReviewSettings, ReviewStore

__all__ = ["fail_task", "notify"]


def fail_task(store: ReviewStore, item: Mapping[str, Any], error: RdsgateError) -> None:
    """Fail the Step Functions task the review holds, if any, with the error's name."""
    token = item.get("taskToken")
    if token:
        store.clients.get("stepfunctions").send_task_failure(taskToken=token, error=type(error).__name__, cause=error.message[:32768])


def notify(settings: ReviewSettings, event: str, item: Mapping[str, Any]) -> None:
    """Tell the optional SNS topic (Slack or Teams through AWS Chatbot): never SQL parameters or tokens."""
    if not settings.topic:
        return
    subject = f"rdsgate review {item['id']} {event}: {item['connection']}" + (f" / {item['runbook']}" if item.get("runbook") else "")
    message = {
        "version": "1.0", "source": "custom",
        "content": {"title": subject[:250],
                    "description": f"{item.get('requester')} asked to run {', '.join(item.get('statementKinds') or []) or 'a statement'} "
                                   f"on {item['connection']}; status {item['status']}; expires {item['expiresAt']}."},
        "metadata": {"additionalContext": {"reviewId": item["id"], "status": item["status"], "connection": item["connection"],
                                           "runbook": item.get("runbook"), "requestSha256": item["requestSha256"]}},
    }
    try:
        CLIENTS.get("sns").publish(TopicArn=settings.topic, Subject=subject[:100], Message=json.dumps(message))
    except Exception:  # a notification never decides a review
        pass
