"""Output shapes of the labelers-over-time API, and its one query parameter."""

from __future__ import annotations

from rest_framework import serializers

from review.selectors import DEFAULT_WEEKS, MAX_WEEKS


class QualityQuerySerializer(serializers.Serializer):
    weeks = serializers.IntegerField(min_value=1, max_value=MAX_WEEKS, default=DEFAULT_WEEKS,
                                     help_text=f"ISO weeks up to this one (UTC), 1 to {MAX_WEEKS}")


class ProportionSerializer(serializers.Serializer):
    successes = serializers.IntegerField()
    n = serializers.IntegerField()
    value = serializers.FloatField(allow_null=True)
    ci_low = serializers.FloatField(allow_null=True, help_text="Wilson 95 %, no continuity correction")
    ci_high = serializers.FloatField(allow_null=True)


class KappaSerializer(serializers.Serializer):
    n = serializers.IntegerField()
    value = serializers.FloatField(allow_null=True)
    ci_low = serializers.FloatField(allow_null=True, help_text="κ − z·SE, analytic large-sample SE")
    ci_high = serializers.FloatField(allow_null=True)
    se = serializers.FloatField(allow_null=True)
    reason = serializers.CharField(allow_null=True, help_text="why the value or the interval is undefined")


class TrailingSerializer(serializers.Serializer):
    value = serializers.FloatField()
    correct = serializers.IntegerField()
    n = serializers.IntegerField()
    weeks = serializers.IntegerField()


class WeekSerializer(serializers.Serializer):
    week = serializers.CharField(help_text="ISO week, e.g. 2026-W49")
    start = serializers.DateField(help_text="its Monday (UTC)")
    labels = serializers.IntegerField()
    accuracy = ProportionSerializer(help_text="on hidden gold")
    kappa = KappaSerializer(help_text="Cohen's κ on hidden gold")
    peer = ProportionSerializer(help_text="agreeing pairs with other labelers on the same item and queue")
    final = ProportionSerializer(help_text="agreement with the item's final label")
    trailing = TrailingSerializer(allow_null=True, help_text="pooled accuracy of the previous 4 weeks")
    drift = serializers.BooleanField()
    drift_reason = serializers.CharField(allow_blank=True)


class WindowSerializer(serializers.Serializer):
    first = serializers.DateField()
    last = serializers.DateField()
    weeks = serializers.IntegerField()


class LabelerRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    vendor = serializers.CharField()
    vendor_id = serializers.IntegerField()
    external_id = serializers.CharField()
    status = serializers.CharField()


class LabelerQualitySerializer(serializers.Serializer):
    labeler = LabelerRefSerializer()
    window = WindowSerializer()
    drift_rule = serializers.CharField()
    latest_gold_week = serializers.CharField(allow_null=True)
    drift = serializers.BooleanField(help_text="the latest gold week is flagged")
    weeks = WeekSerializer(many=True)


class VendorLabelerSerializer(serializers.Serializer):
    labeler = LabelerRefSerializer()
    latest_gold_week = serializers.CharField(allow_null=True)
    drift = serializers.BooleanField()


class VendorRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class VendorQualitySerializer(serializers.Serializer):
    vendor = VendorRefSerializer()
    window = WindowSerializer()
    drift_rule = serializers.CharField()
    latest_gold_week = serializers.CharField(allow_null=True)
    drift = serializers.BooleanField()
    weeks = WeekSerializer(many=True)
    labelers = VendorLabelerSerializer(many=True)
