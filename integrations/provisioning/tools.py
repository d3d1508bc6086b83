"""The voice agent's tools: AskPro's six live functions and Retell's transfer and end call.

Argument lists follow DESIGN.md (HTTP surface, `/webhooks/retell/<endpoint>/functions/
<name>/`). Retell POSTs `{name, call, args}` (`args_at_root` off); the caller's number
comes from `call.from_number`, so no function asks for it.
"""

from __future__ import annotations

from typing import Any

# Retell retries a failed function call (DESIGN.md: up to 2 times); ours are idempotent.
FUNCTION_TIMEOUT_MS = 8000
FUNCTION_RETRIES = 2

_SERVICE = {"type": "string", "description": "Service id, or the service name the caller said."}
_STAFF = {"type": "string", "description": "Staff id or name, only if the caller asked for one."}
_DATE = {"type": "string", "description": "Day in the branch's time zone, YYYY-MM-DD."}
_START = {
    "type": "string",
    "description": "Start time exactly as a slot from check_availability gave it (ISO 8601).",
}
_APPOINTMENT = {
    "type": "integer",
    "description": "Appointment id from list_my_appointments; omit if the caller has one.",
}
_CONFIRM_NAME = {"type": "string", "description": "The name the caller confirmed."}

# name: (description, properties, required, speak during execution)
FUNCTIONS: dict[str, tuple[str, dict[str, Any], list[str], bool]] = {
    "find_customer": (
        "Look up the caller by their phone number; call at the start of every call.",
        {},
        [],
        False,
    ),
    "list_my_appointments": (
        "List the caller's upcoming appointments.",
        {},
        [],
        True,
    ),
    "check_availability": (
        "Find free slots for a service, optionally with one staff member and for a day "
        "or a range of days.",
        {
            "service": _SERVICE,
            "staff": _STAFF,
            "date": _DATE,
            "date_to": {**_DATE, "description": "Last day of a range, YYYY-MM-DD."},
        },
        ["service"],
        True,
    ),
    "book_appointment": (
        "Book a slot the caller chose, after confirming service, time and name.",
        {
            "service": _SERVICE,
            "start": _START,
            "name": {"type": "string", "description": "The caller's full name."},
            "staff": _STAFF,
        },
        ["service", "start", "name"],
        True,
    ),
    "cancel_appointment": (
        "Cancel one of the caller's appointments once they confirmed it.",
        {"appointment": _APPOINTMENT, "confirm_name": _CONFIRM_NAME},
        ["confirm_name"],
        True,
    ),
    "reschedule_appointment": (
        "Move one of the caller's appointments to a new free start time.",
        {
            "appointment": _APPOINTMENT,
            "start": {**_START, "description": "The new start, as check_availability gave it."},
            "confirm_name": _CONFIRM_NAME,
        },
        ["start", "confirm_name"],
        True,
    ),
}


def function_url(base_url: str, endpoint_id: str, name: str) -> str:
    return f"{base_url.rstrip('/')}/webhooks/retell/{endpoint_id}/functions/{name}/"


def custom_function(base_url: str, endpoint_id: str, name: str) -> dict[str, Any]:
    """One of AskPro's functions as a Retell custom tool."""
    description, properties, required, speak = FUNCTIONS[name]
    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        parameters["required"] = required
    return {
        "type": "custom",
        "name": name,
        "description": description,
        "url": function_url(base_url, endpoint_id, name),
        "method": "POST",
        "args_at_root": False,
        "parameters": parameters,
        "speak_during_execution": speak,
        "speak_after_execution": True,
        "timeout_ms": FUNCTION_TIMEOUT_MS,
        "max_retry": FUNCTION_RETRIES,
    }


def transfer_tool(number: str) -> dict[str, Any]:
    return {
        "type": "transfer_call",
        "name": "transfer_to_branch",
        "description": "Transfer the caller to a person at the branch when they ask for one "
        "or you can't help.",
        "transfer_destination": {"type": "predefined", "number": number},
        "transfer_option": {"type": "cold_transfer"},
    }


def end_call_tool() -> dict[str, Any]:
    return {
        "type": "end_call",
        "name": "end_call",
        "description": "End the call after saying goodbye, when the caller has nothing else.",
    }


def agent_tools(base_url: str, endpoint_id: str, transfer_to: str) -> list[dict[str, Any]]:
    """The six functions, then transfer (when the branch has a number) and end call."""
    tools = [custom_function(base_url, endpoint_id, name) for name in FUNCTIONS]
    if transfer_to:
        tools.append(transfer_tool(transfer_to))
    tools.append(end_call_tool())
    return tools
