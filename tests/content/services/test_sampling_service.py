"""Samples over stored content: reproducible, probabilities stored, clear errors."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum

from content.models import ContentItem, ContentItemStatus, Sample, SampleMember
from content.services.sampling import SamplingFailed, sample_create
from tests.content.users import sampler

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cli_user")]


@pytest.fixture
def items() -> list[ContentItem]:
    countries = ["NG"] * 60 + ["IN"] * 30 + ["US"] * 10
    rows = [ContentItem(source="demo", external_id=str(i), parts={"text": f"t{i}"}, content_sha256=f"{i:064d}",
                        metadata={"country": c}, scores={"toxicity": (i % 10) / 10})
            for i, c in enumerate(countries)]
    rows.append(ContentItem(source="demo", external_id="bad", parts={"text": "x"}, content_sha256="f" * 64,
                            status=ContentItemStatus.FAILED, failure_reason="bad image"))
    return ContentItem.objects.bulk_create(rows)


def members(sample: Sample) -> list[tuple[str, str, float]]:
    return list(sample.members.order_by("item__external_id").values_list("item__external_id", "stratum",
                                                                          "inclusion_probability"))


def test_stratified_sample_is_stored_with_strata_and_probabilities(items) -> None:
    sample = sample_create(name="s1", method="stratified", size=20, seed=7, source="demo", stratify_by="country",
                           acting_user=sampler())
    assert (sample.frame_size, sample.size, sample.expected_size) == (100, 20, 20.0)  # failed item excluded
    assert sample.strata == {"IN": {"frame": 30, "sample": 6}, "NG": {"frame": 60, "sample": 12},
                             "US": {"frame": 10, "sample": 2}}
    by_stratum = {s: p for _, s, p in members(sample)}
    assert by_stratum == {"IN": pytest.approx(0.2), "NG": pytest.approx(0.2), "US": pytest.approx(0.2)}
    weights = sum(1 / p for _, _, p in members(sample))
    assert weights == pytest.approx(100)


def test_same_parameters_and_seed_reproduce_the_sample(items) -> None:
    a = sample_create(name="a", method="score_weighted", size=15, seed=3, score_signal="toxicity",
                      acting_user=sampler())
    b = sample_create(name="b", method="score_weighted", size=15, seed=3, score_signal="toxicity",
                      acting_user=sampler())
    c = sample_create(name="c", method="score_weighted", size=15, seed=4, score_signal="toxicity",
                      acting_user=sampler())
    assert members(a) == members(b) != members(c)
    total = SampleMember.objects.filter(sample=a).aggregate(total=Sum("inclusion_probability"))["total"]
    assert 0 < total < 15  # members carry their π; the frame's π sum to n = expected size
    assert a.expected_size == 15


def test_errors_name_the_parameter(items) -> None:
    with pytest.raises(SamplingFailed, match="needs --stratify-by"):
        sample_create(name="x", method="stratified", size=5, seed=1, acting_user=sampler())
    with pytest.raises(SamplingFailed, match="score signal 'spam' is missing on 100 frame items"):
        sample_create(name="x", method="score_weighted", size=5, seed=1, score_signal="spam", acting_user=sampler())
    with pytest.raises(SamplingFailed, match="exceeds the frame size 100"):
        sample_create(name="x", method="uniform", size=101, seed=1, acting_user=sampler())
    sample_create(name="x", method="uniform", size=5, seed=1, acting_user=sampler())
    with pytest.raises(SamplingFailed, match="exists already"):
        sample_create(name="x", method="uniform", size=5, seed=1, acting_user=sampler())
    assert Sample.objects.count() == 1


def test_cli_create_and_show(items) -> None:
    out = StringIO()
    call_command("sample", "create", "cli", "--method", "stratified", "--size", "10", "--seed", "1",
                 "--stratify-by", "country", "--allocation", "equal", "--where", "country=NG", stdout=out)
    assert "10 of 60 items" in out.getvalue()
    call_command("sample", "show", "cli", stdout=out)
    assert "NG: 10 of 60" in out.getvalue()
    with pytest.raises(CommandError, match="use KEY=VALUE"):
        call_command("sample", "create", "y", "--method", "uniform", "--size", "1", "--seed", "1", "--where", "x")


def test_admin_draws_a_sample_through_the_service(items, admin_client) -> None:
    from django.urls import reverse

    url = reverse("admin:content_sample_add")
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(url, {"name": "from-admin", "method": "uniform", "size": 10, "seed": 5,
                                       "allocation": "proportional", "floor": 0.01})
    sample = Sample.objects.get(name="from-admin")
    assert response.status_code == 302 and sample.size == 10
    failed = admin_client.post(url, {"name": "too-big", "method": "uniform", "size": 1000, "seed": 5,
                                     "allocation": "proportional", "floor": 0.01}, follow=True)
    assert "exceeds the frame size" in failed.content.decode()


@pytest.mark.parametrize("who", ["author", "nobody"])
def test_drawing_needs_add_sample_and_a_refusal_writes_nothing(items, author, who) -> None:
    from touchstone.errors import PermissionDenied
    from touchstone.models import AuditEvent

    events = AuditEvent.objects.count()
    user = author if who == "author" else None  # a policy author has no content.add_sample
    with pytest.raises(PermissionDenied, match="may not draw a sample: that needs the content.add_sample"):
        sample_create(name="x", method="uniform", size=5, seed=1, acting_user=user)
    assert not Sample.objects.exists() and not SampleMember.objects.exists()
    assert AuditEvent.objects.count() == events


def test_cli_create_is_refused_without_add_sample(items, author) -> None:
    with pytest.raises(CommandError, match="content.add_sample"):
        call_command("sample", "create", "x", "--method", "uniform", "--size", "5", "--seed", "1",
                     "--user", author.get_username(), stdout=StringIO())
    assert not Sample.objects.exists()
