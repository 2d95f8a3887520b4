"""``python manage.py endpoint add|list [--json]``: OpenAI-compatible endpoints."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from runs.models import LLMEndpoint
from runs.services.endpoints import llm_endpoint_create
from touchstone.cli import acting_user, add_user_argument, application_errors_as_command_errors


class Command(BaseCommand):
    help = "LLM endpoints (the API key stays in the environment; only its variable name is stored)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        p = sub.add_parser("add")
        p.add_argument("name")
        p.add_argument("--base-url", required=True)
        p.add_argument("--api-key-env", default="OPENAI_API_KEY")
        p.add_argument("--max-concurrency", type=int, default=16,
                       help="requests in flight per worker process (the endpoint sees processes × this)")
        p.add_argument("--rpm", type=int, default=600)
        p.add_argument("--tpm", type=int, default=1_000_000)
        p.add_argument("--price-input", type=Decimal, default=Decimal(0), help="per million input tokens")
        p.add_argument("--price-cached-input", type=Decimal, default=Decimal(0))
        p.add_argument("--price-output", type=Decimal, default=Decimal(0))
        p.add_argument("--timeout", type=float, default=60)
        p.add_argument("--simulator", action="store_true", help="the bundled simulator: output is simulated")
        p.add_argument("--supports-batch", action="store_true", help="the endpoint offers the OpenAI Batch API")
        p.add_argument("--json", action="store_true", help="print the endpoint as one JSON document")
        add_user_argument(p)
        p = sub.add_parser("list")
        p.add_argument("--json", action="store_true", help="print the endpoints as one JSON document")

    @application_errors_as_command_errors
    def handle(self, *args: Any, **o: Any) -> None:
        if o["action"] == "list":
            if o["json"]:
                self.stdout.write(_dumps({"endpoints": [_endpoint_document(ep) for ep in LLMEndpoint.objects.all()]}))
                return
            for ep in LLMEndpoint.objects.all():
                self.stdout.write(f"{ep}\t{ep.base_url}\tconcurrency={ep.max_concurrency}\trpm={ep.requests_per_minute}")
            return
        endpoint = llm_endpoint_create(
            name=o["name"], acting_user=acting_user(o["user"]), base_url=o["base_url"], api_key_env=o["api_key_env"],
            max_concurrency=o["max_concurrency"],
            requests_per_minute=o["rpm"], tokens_per_minute=o["tpm"], price_input_per_million=o["price_input"],
            price_cached_input_per_million=o["price_cached_input"], price_output_per_million=o["price_output"],
            timeout_seconds=o["timeout"], is_simulator=o["simulator"], supports_batch=o["supports_batch"])
        if o["json"]:
            self.stdout.write(_dumps(_endpoint_document(endpoint)))
            return
        self.stdout.write(f"added endpoint {endpoint}")


def _endpoint_document(ep: LLMEndpoint) -> dict[str, Any]:
    """An endpoint as ``--json`` prints it (the key's variable name, never the key; prices per million
    tokens as decimal strings)."""
    return {"endpoint": ep.pk, "name": ep.name, "base_url": ep.base_url, "api_key_env": ep.api_key_env,
            "simulator": ep.is_simulator, "supports_batch": ep.supports_batch,
            "max_concurrency": ep.max_concurrency, "requests_per_minute": ep.requests_per_minute,
            "tokens_per_minute": ep.tokens_per_minute, "price_input_per_million": str(ep.price_input_per_million),
            "price_cached_input_per_million": str(ep.price_cached_input_per_million),
            "price_output_per_million": str(ep.price_output_per_million), "timeout_seconds": ep.timeout_seconds}


def _dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False)
