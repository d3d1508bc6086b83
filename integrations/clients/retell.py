"""Retell through retell-sdk: Retell LLMs, voice agents and phone numbers.

Every call goes through `sdk.call` (our one retry layer, the seam's breaker and timeouts,
`IntegrationError` out). `get_*` answer None for an object Retell doesn't have — deleted,
or owned by another API key (Retell scopes objects per key) — so provisioning can
re-create it instead of failing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from retell.types import AgentResponse, LlmResponse, PhoneNumberResponse
from retell.types.agent_list_response import Item as AgentSummary

from integrations import sdk
from integrations.credentials import Credentials
from integrations.deadline import Deadline
from integrations.errors import IntegrationError

T = TypeVar("T")
PAGE = 1000


class RetellClient:
    def __init__(self, credentials: Credentials, deadline: Deadline) -> None:
        self.client = sdk.retell_client(credentials.api_key)
        self.deadline = deadline

    def _call(self, operation: str, fn: Callable[[], T]) -> T:
        return sdk.call("retell", operation, self.deadline, fn)

    def _found(self, operation: str, fn: Callable[[], T]) -> T | None:
        try:
            return self._call(operation, fn)
        except IntegrationError as exc:
            if exc.status == 404:
                return None
            raise

    def _every(self, operation: str, method: Callable[..., Any]) -> list[Any]:
        """Every item of a paginated list."""
        found: list[Any] = []
        params: dict[str, Any] = {"limit": PAGE}
        while True:
            page = self._call(operation, functools.partial(method, **params))
            found.extend(page.items)
            if not page.has_more or not page.pagination_key:
                return found
            params = {**params, "pagination_key": page.pagination_key}

    # -- Retell LLMs -----------------------------------------------------------------
    def get_llm(self, llm_id: str) -> LlmResponse | None:
        return self._found("get_llm", lambda: self.client.llm.retrieve(llm_id))

    def create_llm(self, **fields: Any) -> LlmResponse:
        return self._call("create_llm", lambda: self.client.llm.create(**fields))

    def update_llm(self, llm_id: str, **fields: Any) -> LlmResponse:
        return self._call("update_llm", lambda: self.client.llm.update(llm_id, **fields))

    # -- agents ----------------------------------------------------------------------
    def list_agents(self) -> list[AgentSummary]:
        return self._every("list_agents", self.client.agent.list)

    def get_agent(self, agent_id: str) -> AgentResponse | None:
        return self._found("get_agent", lambda: self.client.agent.retrieve(agent_id))

    def create_agent(self, **fields: Any) -> AgentResponse:
        return self._call("create_agent", lambda: self.client.agent.create(**fields))

    def update_agent(self, agent_id: str, **fields: Any) -> AgentResponse:
        return self._call("update_agent", lambda: self.client.agent.update(agent_id, **fields))

    # -- phone numbers ---------------------------------------------------------------
    def list_phone_numbers(self) -> list[PhoneNumberResponse]:
        return self._every("list_phone_numbers", self.client.phone_number.list)

    def get_phone_number(self, number: str) -> PhoneNumberResponse | None:
        return self._found("get_phone_number", lambda: self.client.phone_number.retrieve(number))

    def import_phone_number(
        self, number: str, *, termination_uri: str, **fields: Any
    ) -> PhoneNumberResponse:
        return self._call(
            "import_phone_number",
            lambda: self.client.phone_number.import_(
                phone_number=number, termination_uri=termination_uri, **fields
            ),
        )

    def update_phone_number(self, number: str, **fields: Any) -> PhoneNumberResponse:
        return self._call(
            "update_phone_number",
            lambda: self.client.phone_number.update(number, **fields),
        )
