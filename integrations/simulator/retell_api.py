"""Retell API subset used by provisioning: Retell LLMs, agents, imported phone numbers.

Paths and shapes follow the official ``retell-sdk`` 6.x (``/create-retell-llm``,
``/v2/list-agents``, ``/import-phone-number``...). ``Authorization: Bearer <key>`` is
required; each object belongs to the key that created it and lists are scoped to it.
Updates merge the body, bump ``version`` and ``last_modification_timestamp``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from .common import ApiError, Context, SimRequest, SimResponse, clone, now_ms, rand_hex, visible

Handler = Callable[[SimRequest, str, list[str]], tuple[int, Any]]

_E164 = re.compile(r"\+[1-9]\d{6,14}")


def error_body(exc: ApiError) -> dict[str, Any]:
    return {"status": "error", "message": exc.message}


def fault_body(status: int) -> dict[str, Any]:
    return error_body(ApiError(status, f"Simulated Retell failure ({status})."))


def _body(req: SimRequest) -> dict[str, Any]:
    if req.parse_error:
        raise ApiError(400, f"Invalid JSON body: {req.parse_error}")
    if req.body is None:
        return {}
    if not isinstance(req.body, dict):
        raise ApiError(400, "Body must be a JSON object")
    return req.body


class RetellApi:
    """Handlers of ``/retell/...``; call ``handle`` with the context lock held."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("POST", re.compile(r"/create-retell-llm"), self.create_llm),
            ("GET", re.compile(r"/get-retell-llm/([^/]+)"), self.get_llm),
            ("PATCH", re.compile(r"/update-retell-llm/([^/]+)"), self.update_llm),
            ("GET", re.compile(r"/v2/list-retell-llms"), self.list_llms),
            ("DELETE", re.compile(r"/delete-retell-llm/([^/]+)"), self.delete_llm),
            ("POST", re.compile(r"/create-agent"), self.create_agent),
            ("GET", re.compile(r"/get-agent/([^/]+)"), self.get_agent),
            ("PATCH", re.compile(r"/update-agent/([^/]+)"), self.update_agent),
            ("POST", re.compile(r"/v2/list-agents"), self.list_agents),
            ("DELETE", re.compile(r"/delete-agent/([^/]+)"), self.delete_agent),
            ("POST", re.compile(r"/import-phone-number"), self.import_phone_number),
            ("GET", re.compile(r"/get-phone-number/([^/]+)"), self.get_phone_number),
            ("PATCH", re.compile(r"/update-phone-number/([^/]+)"), self.update_phone_number),
            ("GET", re.compile(r"/v2/list-phone-numbers"), self.list_phone_numbers),
            ("DELETE", re.compile(r"/delete-phone-number/([^/]+)"), self.delete_phone_number),
        ]

    @property
    def s(self) -> dict[str, Any]:
        retell_state: dict[str, Any] = self.ctx.state["retell"]
        return retell_state

    def handle(self, req: SimRequest) -> SimResponse:
        try:
            key = req.bearer()
            if not key:
                raise ApiError(401, "Unauthorized: missing or invalid API key")
            known = False
            for method, pattern, handler in self.routes:
                match = pattern.fullmatch(req.path)
                if match:
                    known = True
                    if method == req.method:
                        groups = [unquote(g) for g in match.groups()]
                        status, body = handler(req, key, groups)
                        return SimResponse(status, body)
            if known:
                raise ApiError(405, f"Method {req.method} not allowed")
            raise ApiError(404, f"Not found: {req.method} {req.path}")
        except ApiError as exc:
            return SimResponse(exc.status, error_body(exc))

    # -- generic collection helpers --------------------------------------------------
    def _get(self, collection: str, ident: str, key: str, kind: str) -> dict[str, Any]:
        obj: dict[str, Any] | None = self.s[collection].get(ident)
        if obj is None or not visible(self.s["owners"], ident, key):
            raise ApiError(404, f"{kind} {ident} not found")
        return obj

    def _page(self, req: SimRequest, collection: str, key: str, id_field: str) -> dict[str, Any]:
        items = [o for i, o in self.s[collection].items() if visible(self.s["owners"], i, key)]
        if req.q("sort_order", "descending") == "descending":
            items.reverse()
        after = req.q("pagination_key")
        if after:
            ids = [o[id_field] for o in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
        try:
            limit = max(1, int(req.q("limit") or 1000))
        except ValueError:
            raise ApiError(400, "limit must be an integer") from None
        page = items[:limit]
        has_more = len(items) > limit
        return {
            "items": page,
            "has_more": has_more,
            "pagination_key": page[-1][id_field] if has_more and page else None,
        }

    def _update(self, obj: dict[str, Any], body: dict[str, Any], protected: set[str]) -> None:
        obj.update({k: v for k, v in body.items() if k not in protected})
        if "version" in obj:
            obj["version"] += 1
        obj["last_modification_timestamp"] = now_ms()

    # -- LLMs ------------------------------------------------------------------------
    def create_llm(self, req: SimRequest, key: str, _: list[str]) -> tuple[int, Any]:
        llm_id = f"llm_{rand_hex(32)}"
        llm = {
            **_body(req),
            "llm_id": llm_id,
            "version": 0,
            "is_published": False,
            "last_modification_timestamp": now_ms(),
        }
        self.s["llms"][llm_id] = llm
        self.s["owners"][llm_id] = key
        return 201, clone(llm)

    def get_llm(self, req: SimRequest, key: str, g: list[str]) -> tuple[int, Any]:
        return 200, clone(self._get("llms", g[0], key, "LLM"))

    def update_llm(self, req: SimRequest, key: str, g: list[str]) -> tuple[int, Any]:
        llm = self._get("llms", g[0], key, "LLM")
        self._update(llm, _body(req), {"llm_id", "version", "last_modification_timestamp"})
        return 200, clone(llm)

    def list_llms(self, req: SimRequest, key: str, _: list[str]) -> tuple[int, Any]:
        return 200, clone(self._page(req, "llms", key, "llm_id"))

    def delete_llm(self, req: SimRequest, key: str, g: list[str]) -> tuple[int, Any]:
        self._get("llms", g[0], key, "LLM")
        del self.s["llms"][g[0]]
        return 204, None

    # -- agents ----------------------------------------------------------------------
    def _check_engine(self, engine: Any, key: str) -> None:
        if not isinstance(engine, dict) or not engine.get("type"):
            raise ApiError(400, "response_engine must be an object with a type")
        if engine["type"] == "retell-llm":
            self._get("llms", str(engine.get("llm_id")), key, "LLM")

    def create_agent(self, req: SimRequest, key: str, _: list[str]) -> tuple[int, Any]:
        body = _body(req)
        self._check_engine(body.get("response_engine"), key)
        if not body.get("voice_id"):
            raise ApiError(400, "voice_id is required")
        agent_id = f"agent_{rand_hex(32)}"
        agent = {
            **body,
            "agent_id": agent_id,
            "version": 0,
            "is_published": False,
            "channel": "voice",
            "last_modification_timestamp": now_ms(),
        }
        self.s["agents"][agent_id] = agent
        self.s["owners"][agent_id] = key
        return 201, clone(agent)

    def get_agent(self, req: SimRequest, key: str, g: list[str]) -> tuple[int, Any]:
        return 200, clone(self._get("agents", g[0], key, "Agent"))

    def update_agent(self, req: SimRequest, key: str, g: list[str]) -> tuple[int, Any]:
        agent = self._get("agents", g[0], key, "Agent")
        body = _body(req)
        if "response_engine" in body:
            self._check_engine(body["response_engine"], key)
        self._update(agent, body, {"agent_id", "version", "last_modification_timestamp"})
        return 200, clone(agent)

    def list_agents(self, req: SimRequest, key: str, _: list[str]) -> tuple[int, Any]:
        page = self._page(req, "agents", key, "agent_id")
        page["items"] = [
            {
                "agent_id": a["agent_id"],
                "agent_name": a.get("agent_name") or "",
                "channel": a.get("channel", "voice"),
                "is_suspended": False,
                "tags": {},
                "user_modified_timestamp": a["last_modification_timestamp"],
            }
            for a in page["items"]
        ]
        return 200, page

    def delete_agent(self, req: SimRequest, key: str, g: list[str]) -> tuple[int, Any]:
        self._get("agents", g[0], key, "Agent")
        del self.s["agents"][g[0]]
        return 204, None

    # -- phone numbers ---------------------------------------------------------------
    def _check_agents(self, body: dict[str, Any], key: str) -> None:
        for field in ("inbound_agents", "outbound_agents"):
            for binding in body.get(field) or []:
                agent_id = binding.get("agent_id") if isinstance(binding, dict) else None
                self._get("agents", str(agent_id), key, "Agent")

    def import_phone_number(self, req: SimRequest, key: str, _: list[str]) -> tuple[int, Any]:
        body = _body(req)
        number = body.get("phone_number")
        if not isinstance(number, str) or not _E164.fullmatch(number):
            raise ApiError(400, "phone_number must be in E.164 format")
        if not body.get("termination_uri"):
            raise ApiError(400, "termination_uri is required")
        if number in self.s["phone_numbers"]:
            raise ApiError(409, f"Phone number {number} already exists")
        self._check_agents(body, key)
        phone = {
            "phone_number": number,
            "phone_number_pretty": number,
            "phone_number_type": "custom",
            "nickname": None,
            "inbound_agents": None,
            "outbound_agents": None,
            "inbound_webhook_url": None,
            "allowed_inbound_country_list": None,
            "allowed_outbound_country_list": None,
            **{k: v for k, v in body.items() if k not in {"sip_trunk_auth_password"}},
            "last_modification_timestamp": now_ms(),
        }
        self.s["phone_numbers"][number] = phone
        self.s["owners"][number] = key
        return 201, clone(phone)

    def get_phone_number(self, req: SimRequest, key: str, g: list[str]) -> tuple[int, Any]:
        return 200, clone(self._get("phone_numbers", g[0], key, "Phone number"))

    def update_phone_number(self, req: SimRequest, key: str, g: list[str]) -> tuple[int, Any]:
        phone = self._get("phone_numbers", g[0], key, "Phone number")
        body = _body(req)
        self._check_agents(body, key)
        protected = {"phone_number", "phone_number_type", "last_modification_timestamp"}
        self._update(phone, body, protected | {"auth_password"})
        return 200, clone(phone)

    def list_phone_numbers(self, req: SimRequest, key: str, _: list[str]) -> tuple[int, Any]:
        return 200, clone(self._page(req, "phone_numbers", key, "phone_number"))

    def delete_phone_number(self, req: SimRequest, key: str, g: list[str]) -> tuple[int, Any]:
        self._get("phone_numbers", g[0], key, "Phone number")
        del self.s["phone_numbers"][g[0]]
        return 204, None
