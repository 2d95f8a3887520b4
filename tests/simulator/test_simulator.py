"""The real ``openai`` client against the LLM simulator: structured output, determinism,
calibration, labelling as a simulator, and every fault kind."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import jsonschema
import openai
import pytest

from policies.compiler import ModelSettings, TemplateSpec, compile_prompt, render_user_message
from policies.policyfile import parse_policy_file
from simulator.engine import SimulatorConfig, parse_models, text_sha256
from simulator.server import serve_in_thread

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def prompt():
    spec = parse_policy_file((REPO / "policies/example_policies/harassment.md").read_text(), version=1)
    body = (REPO / "policies/prompt_templates/json_classifier.txt").read_text()
    return compile_prompt(spec, TemplateSpec("json_classifier", 1, body), ModelSettings("sim-strong"))


def start(config: SimulatorConfig) -> tuple[openai.OpenAI, object]:
    server, _ = serve_in_thread(config)
    host, port = server.server_address[:2]
    client = openai.OpenAI(base_url=f"http://{host}:{port}/v1", api_key="sk-test", max_retries=0, timeout=5)
    return client, server


@pytest.fixture
def simulator() -> Iterator[tuple[openai.OpenAI, object]]:
    client, server = start(SimulatorConfig(timeout_seconds=3))
    yield client, server
    server.shutdown()
    server.server_close()


def ask(client: openai.OpenAI, prompt, text: str, model: str = "sim-strong", seed: int | None = 1, **kwargs):
    content = render_user_message(prompt.user_message_template, parts={"user": text, "agent": "Hello!"},
                                  target="user")
    return client.chat.completions.create(
        model=model, seed=seed,
        messages=[{"role": "system", "content": prompt.system_prompt}, {"role": "user", "content": content}],
        response_format={"type": "json_schema",
                         "json_schema": {"name": "judgement", "schema": prompt.output_schema, "strict": True}},
        **kwargs)


def test_structured_output_validates_against_the_prompt_schema(simulator, prompt) -> None:
    client, _ = simulator
    response = ask(client, prompt, "you are a stupid useless bot")
    answer = json.loads(response.choices[0].message.content)
    jsonschema.validate(answer, prompt.output_schema)
    assert answer["label"] == "insult"  # the documented lexicon rule: first violating label
    assert answer["rationale"].startswith("[simulated]")
    assert response.usage.prompt_tokens > 0 and response.usage.completion_tokens > 0
    assert response.usage.prompt_tokens_details.cached_tokens == 0


def test_it_is_labelled_as_a_simulator_everywhere(simulator, prompt) -> None:
    client, _ = simulator
    models = [m.id for m in client.models.list()]
    assert models and all(m.startswith("sim-") for m in models)
    raw = client.chat.completions.with_raw_response.create(
        model="sim-weak", messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["x-touchstone-simulator"] == "1"
    assert raw.parse().system_fingerprint == "touchstone-simulator"


def test_answers_are_deterministic_for_the_same_request(simulator, prompt) -> None:
    client, _ = simulator
    texts = [f"message number {i} about the weather" for i in range(10)]
    first = [ask(client, prompt, t).choices[0].message.content for t in texts]
    second = [ask(client, prompt, t).choices[0].message.content for t in texts]
    assert first == second


def test_repeated_system_prompt_is_reported_as_cached(simulator, prompt) -> None:
    client, _ = simulator
    ask(client, prompt, "first")
    cached = ask(client, prompt, "second").usage.prompt_tokens_details.cached_tokens
    assert prompt.token_count >= 1024 and cached > 0 and cached % 128 == 0


def test_unknown_model_is_a_404_like_openai(simulator) -> None:
    client, _ = simulator
    with pytest.raises(openai.NotFoundError) as exc:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert "does not exist" in str(exc.value)


@pytest.mark.parametrize(("fault", "check"), [
    ("429", "rate_limit"), ("500", "server_error"), ("timeout", "timeout"),
    ("malformed", "invalid_json"), ("refusal", "refusal"), ("truncated", "length"),
])
def test_each_fault_kind_reaches_the_client_as_it_would_from_openai(simulator, prompt, fault, check) -> None:
    client, _ = simulator
    headers = {"X-Sim-Fault": fault}
    if check == "rate_limit":
        with pytest.raises(openai.RateLimitError) as exc:
            ask(client, prompt, "x", extra_headers=headers)
        assert exc.value.response.headers["retry-after"] == "1"
    elif check == "server_error":
        with pytest.raises(openai.InternalServerError):
            ask(client, prompt, "x", extra_headers=headers)
    elif check == "timeout":
        with pytest.raises(openai.APITimeoutError):
            ask(client, prompt, "x", extra_headers=headers, timeout=httpx.Timeout(0.5))
    else:
        choice = ask(client, prompt, "x", extra_headers=headers).choices[0]
        if check == "invalid_json":
            with pytest.raises(json.JSONDecodeError):
                json.loads(choice.message.content)
        elif check == "refusal":
            assert choice.message.content is None and "[simulated]" in choice.message.refusal
        else:
            assert choice.finish_reason == "length"
            with pytest.raises(json.JSONDecodeError):
                json.loads(choice.message.content)


def test_injected_fault_rate_is_honoured_and_retries_can_succeed(prompt) -> None:
    client, server = start(SimulatorConfig(fault_rate=0.3, fault_kinds=("500",)))
    try:
        failures = 0
        for i in range(200):
            try:
                ask(client, prompt, f"item {i}")
            except openai.InternalServerError:
                failures += 1
                for _ in range(20):  # the n-th attempt draws afresh: a retry gets through
                    try:
                        ask(client, prompt, f"item {i}")
                        break
                    except openai.InternalServerError:
                        continue
                else:
                    pytest.fail(f"item {i} never succeeded")
        assert 40 <= failures <= 80  # 30 % of 200, binomial sd ≈ 6.5
    finally:
        server.shutdown()
        server.server_close()


def test_answer_key_accuracy_and_calibration(prompt) -> None:
    texts = [f"reference item {i}: some words here" for i in range(600)]
    labels = ["insult" if i % 3 == 0 else "not_harassment" for i in range(600)]
    config = SimulatorConfig(models=parse_models(["sim-good:0.9:0.08", "sim-poor:0.65:0.1"]),
                             answer_key={text_sha256(t): lb for t, lb in zip(texts, labels, strict=True)})
    client, server = start(config)
    try:
        for model, target in (("sim-good", 0.9), ("sim-poor", 0.65)):
            answers = [json.loads(ask(client, prompt, t, model=model).choices[0].message.content) for t in texts]
            correct = [a["label"] == lb for a, lb in zip(answers, labels, strict=True)]
            accuracy = sum(correct) / len(correct)
            mean_confidence = sum(a["confidence"] for a in answers) / len(answers)
            assert abs(accuracy - target) < 0.05, (model, accuracy)
            assert abs(mean_confidence - accuracy) < 0.05, (model, mean_confidence, accuracy)
    finally:
        server.shutdown()
        server.server_close()


def test_simulated_model_ids_must_say_sim() -> None:
    with pytest.raises(ValueError, match="must start with 'sim-'"):
        parse_models(["gpt-4o:0.9"])
