"""The API against its own OpenAPI schema (issue 13, item 6): schemathesis generates valid and
invalid path parameters, query strings and bodies for every operation and calls the Django app
in-process (WSGI). No answer may be a 5xx, every status code must be documented, and bodies,
content types and documented headers must match the schema. Bounded and deterministic."""

from __future__ import annotations

import pytest
import schemathesis
from django.contrib.auth.models import Group
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from goldsets.freeze import FreezeRule
from goldsets.services import goldset_version_build, goldset_version_freeze_request
from tests.goldsets.conftest import label_items
from touchstone.api_tokens import api_token_create

pytestmark = pytest.mark.django_db

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]
# What exists, so that generated requests also reach the success paths, not only the 404s.
KNOWN: dict[str, object] = {}


@pytest.fixture
def api_schema(published, django_user_model):
    label_items(published, [["insult"] * 3] * 6 + [["threat", "threat", "insult"]] * 3)
    first = goldset_version_build(version_id=goldset_version_freeze_request(
        name="gs", policy_version=published, rule=FreezeRule()).pk)
    second = goldset_version_build(version_id=goldset_version_freeze_request(
        name="gs", policy_version=published, rule=FreezeRule(min_labels=2)).pk)
    user = django_user_model.objects.create_user("fuzz")
    user.groups.add(Group.objects.get(name="labeling ops"))
    _, key = api_token_create(user=user, name="fuzz", scope="write")
    KNOWN.update(name="gs", number=str(second.number), old=first.number, new=second.number, freeze_id=second.pk,
                 policy="harassment", headers={"Authorization": f"Bearer {key}"})

    from touchstone.wsgi import application

    # As Django's test client does: a request must not close the test's (transactional) connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
    schema.config.generation.update(max_examples=25, deterministic=True)
    schema.config.seed = 13
    schema.hook(flatmap_path_parameters)
    schema.hook(flatmap_query)
    schema.hook(flatmap_body)
    yield schema
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def flatmap_path_parameters(context, path_parameters):
    """As generated, or pointing at the golden set and versions that exist."""
    if not path_parameters:
        return st.just(path_parameters)
    known = {name: KNOWN[name] for name in path_parameters if name in KNOWN}
    return st.sampled_from([path_parameters, {**path_parameters, **known}])


def flatmap_query(context, query):
    """As generated, or without a cursor (mostly an invalid one: a 404) and with a known label."""
    if not query or "cursor" not in query:
        return st.just(query)
    first_page = {name: value for name, value in query.items() if name != "cursor"}
    return st.sampled_from([query, first_page, {**first_page, "gold_label": "insult"}])


def flatmap_body(context, body):
    """As generated, or (for an object) with a policy that exists."""
    if not isinstance(body, dict):
        return st.just(body)
    return st.sampled_from([body, {**body, "policy": KNOWN["policy"]}])


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_to_its_schema(case):
    case.call_and_validate(headers=KNOWN["headers"], checks=CHECKS)
