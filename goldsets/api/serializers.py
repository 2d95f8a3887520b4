"""Output shapes of the golden-set API."""

from __future__ import annotations

from rest_framework import serializers

from goldsets.freeze import RULES


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


class DiffSerializer(serializers.Serializer):
    golden_set = serializers.CharField()
    old = serializers.IntegerField()
    new = serializers.IntegerField()
    counts = serializers.DictField(child=serializers.IntegerField())
    added = serializers.ListField(child=serializers.CharField())
    removed = serializers.ListField(child=serializers.CharField())
    gold_label_changed = serializers.ListField(child=serializers.DictField())


class FreezeInputSerializer(serializers.Serializer):
    policy = serializers.CharField(help_text="SLUG or SLUG@VERSION; default: the golden set's policy, published")
    min_labels = serializers.IntegerField(min_value=1, default=3)
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
