"""LLM endpoints: adding one is audited like every other state change."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from runs.models import LLMEndpoint
from touchstone.audit import audit_event_record
from touchstone.errors import ApplicationError


class EndpointExists(ApplicationError):
    code = "endpoint_exists"
    status = 409


@transaction.atomic(durable=True)
def llm_endpoint_create(*, name: str, acting_user: AbstractBaseUser, **fields: Any) -> LLMEndpoint:
    """Add an endpoint (``fields`` are LLMEndpoint's). Raises EndpointExists for a taken name."""
    if LLMEndpoint.objects.filter(name=name).exists():
        raise EndpointExists(f"an endpoint named {name!r} exists already")
    endpoint = LLMEndpoint.objects.create(name=name, **fields)
    audit_event_record(actor=acting_user, event_type="llm_endpoint.created", obj=endpoint,
                       details={"base_url": endpoint.base_url, "simulator": endpoint.is_simulator})
    return endpoint
