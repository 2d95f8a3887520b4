"""Input and output shapes of the golden-set API. Every query parameter and request body is
read through one of the *Query/*Input serializers: anything else is a 400 naming the field."""

from __future__ import annotations

from rest_framework import serializers

from goldsets.freeze import RULES
from goldsets.models import GoldenSet

MAX_MIN_LABELS = 1000  # labels an item needs; far above any real overlap, and bounded
MAX_LIST_LIMIT = 1_000_000  # items listed per kind in a diff (a golden set has at most ~10^5)
POLICY_REF = r"^[-a-zA-Z0-9_]+(@[0-9]+)?$"


class ItemsQuerySerializer(serializers.Serializer):
    gold_label = serializers.CharField(required=False, max_length=63,
                                       help_text="only items with this gold label (a key of the policy's taxonomy)")
    raw_ids = serializers.BooleanField(default=False, help_text="raw labeler ids (needs the permission)")
    cursor = serializers.CharField(required=False, help_text="the `next` or `previous` link's cursor")
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=1000, help_text="default 100")

    def validate_gold_label(self, value: str) -> str:
        taxonomy = self.context["taxonomy"]
        if value not in taxonomy:
            raise serializers.ValidationError(f"{value!r} is not a label of this version's policy; "
                                              f"use one of {', '.join(taxonomy)}")
        return value


class ExportQuerySerializer(serializers.Serializer):
    raw_ids = serializers.BooleanField(default=False, help_text="raw labeler ids (needs the permission)")


class DiffQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(default=1000, min_value=0, max_value=MAX_LIST_LIMIT,
                                     help_text="items listed per kind (default 1000)")


class VersionSummarySerializer(serializers.Serializer):
    number = serializers.IntegerField()
    frozen_at = serializers.DateTimeField()
    item_count = serializers.IntegerField()
    digest = serializers.CharField()
    changelog = serializers.CharField()
    policy_version = serializers.CharField()


class GoldenSetSerializer(serializers.Serializer):
    name = serializers.CharField()
    policy = serializers.CharField(source="policy.slug")
    description = serializers.CharField()
    created_at = serializers.DateTimeField()


class EstimateSerializer(serializers.Serializer):
    value = serializers.FloatField(allow_null=True)
    ci_low = serializers.FloatField(allow_null=True)
    ci_high = serializers.FloatField(allow_null=True)
    reason = serializers.CharField(required=False)


class VersionSerializer(serializers.Serializer):
    golden_set = serializers.CharField()
    version = serializers.IntegerField()
    digest = serializers.CharField()
    items = serializers.IntegerField()
    labels = serializers.DictField(child=serializers.IntegerField())
    excluded = serializers.DictField(child=serializers.IntegerField())
    percent_agreement = serializers.FloatField(allow_null=True)
    fleiss_kappa = EstimateSerializer(allow_null=True)
    gwet_ac1 = EstimateSerializer(allow_null=True)
    krippendorff_alpha = EstimateSerializer(allow_null=True)
    pairwise_cohen_kappa = serializers.ListField(child=serializers.DictField())
    labelers = serializers.ListField(child=serializers.DictField())
    vendors = serializers.ListField(child=serializers.DictField())
    llm_voters = serializers.ListField(child=serializers.DictField())


class GoldenItemSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    external_id = serializers.CharField()
    source = serializers.CharField()
    content_sha256 = serializers.CharField()
    components = serializers.JSONField(source="parts")
    metadata = serializers.JSONField()
    gold_label = serializers.CharField()
    decided_by = serializers.CharField()
    labels = serializers.SerializerMethodField()
    llm = serializers.JSONField()

    def get_labels(self, item) -> list[dict]:
        rename = self.context["labeler_name"]
        return [{"labeler": rename(label), "vendor": label["vendor"], "label": label["label"], "role": label["role"],
                 "labeled_at": label["labeled_at"]} for label in item.labels]


class GoldenItemPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = GoldenItemSerializer(many=True)


class DiffSerializer(serializers.Serializer):
    golden_set = serializers.CharField()
    old = serializers.IntegerField()
    new = serializers.IntegerField()
    counts = serializers.DictField(child=serializers.IntegerField())
    added = serializers.ListField(child=serializers.CharField())
    removed = serializers.ListField(child=serializers.CharField())
    gold_label_changed = serializers.ListField(child=serializers.DictField())


class GoldenSetNameSerializer(serializers.Serializer):
    name = serializers.SlugField(max_length=GoldenSet._meta.get_field("name").max_length)


class FreezeInputSerializer(serializers.Serializer):
    policy = serializers.RegexField(POLICY_REF, max_length=200,
                                    help_text="SLUG (its published version) or SLUG@VERSION")
    min_labels = serializers.IntegerField(min_value=1, max_value=MAX_MIN_LABELS, default=3)
    rule = serializers.ChoiceField(choices=RULES, default="majority")
    include_llm_only = serializers.BooleanField(default=False)
    changelog = serializers.CharField(default="", allow_blank=True, max_length=500)


class FreezeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    golden_set = serializers.CharField(source="golden_set.name")
    status = serializers.CharField()
    number = serializers.IntegerField(allow_null=True)
    digest = serializers.CharField()
    item_count = serializers.IntegerField()
    failure_reason = serializers.CharField()
    parent = serializers.IntegerField(
        source="parent.number", allow_null=True, default=None,
        help_text="The version it was compared with; with status 'unchanged' it is the version this freeze "
                  "matched item for item, and no new version was made.")
