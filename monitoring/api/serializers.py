"""Shapes of the monitors API: query and body serializers (validated input) and output ones.
Component names start with Monitor so that none clashes with another app's."""

from __future__ import annotations

from rest_framework import serializers

from monitoring.models import AlertStatus, CycleState
from monitoring.series import SERIES_FIELDS
from prevalence.estimators import ESTIMATORS


class MonitorSeriesQuerySerializer(serializers.Serializer):
    label = serializers.CharField(max_length=63, required=False, help_text="only this label ('any violation')")
    estimator = serializers.ChoiceField(choices=ESTIMATORS, required=False, help_text="only this estimator")
    format = serializers.ChoiceField(choices=["json", "csv"], default="json", help_text="json (default) or csv")
    primary = serializers.BooleanField(required=False, allow_null=True, default=None,
                                       help_text="true: only the published version's line; false: only the "
                                                 "prompt-change overlap's second version")


class MonitorCycleListQuerySerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=CycleState.values, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=200, help_text="newest first")


class MonitorAlertListQuerySerializer(serializers.Serializer):
    monitor = serializers.SlugField(max_length=60, required=False)
    open = serializers.BooleanField(required=False, allow_null=True, default=None,
                                    help_text="true: not acknowledged; false: acknowledged")
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=100, help_text="newest first")


class MonitorAlertAcknowledgeSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, allow_blank=False, trim_whitespace=True,
                                   help_text="what was checked or done (audited)")


class MonitorEstimateSerializer(serializers.Serializer):
    estimate = serializers.FloatField(allow_null=True)
    ci_low = serializers.FloatField(allow_null=True)
    ci_high = serializers.FloatField(allow_null=True)
    label = serializers.CharField()
    estimator = serializers.CharField()
    date = serializers.DateField(allow_null=True)


class MonitorSerializer(serializers.Serializer):
    name = serializers.CharField()
    policy = serializers.CharField()
    cadence = serializers.CharField()
    start = serializers.DateField()
    paused = serializers.BooleanField()
    review_queue = serializers.CharField(allow_null=True)
    estimators = serializers.ListField(child=serializers.CharField())
    labels = serializers.ListField(child=serializers.CharField(), allow_null=True)
    alert_rules = serializers.ListField(child=serializers.DictField())
    latest = MonitorEstimateSerializer(allow_null=True, help_text="the headline estimate of the newest done cycle")
    latest_cycle = serializers.DictField(allow_null=True)
    open_alerts = serializers.IntegerField()
    simulated = serializers.BooleanField()
    page = serializers.CharField()
    series = serializers.CharField()


class MonitorCycleRunSerializer(serializers.Serializer):
    policy_version = serializers.IntegerField()
    primary = serializers.BooleanField()
    run = serializers.CharField(allow_null=True)
    estimated_at = serializers.DateTimeField(allow_null=True)
    agreement = serializers.DictField(allow_null=True)


class MonitorCycleSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    monitor = serializers.CharField()
    partition = serializers.DateField()
    state = serializers.ChoiceField(choices=CycleState.values)
    stage = serializers.CharField()
    reason = serializers.CharField()
    backfill = serializers.BooleanField()
    sample = serializers.CharField(allow_null=True)
    audit_items = serializers.IntegerField()
    labels_in = serializers.IntegerField()
    estimated_with_pending = serializers.BooleanField()
    cost = serializers.CharField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    drawn_at = serializers.DateTimeField(allow_null=True)
    labeled_at = serializers.DateTimeField(allow_null=True)
    reviewed_at = serializers.DateTimeField(allow_null=True)
    estimated_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    runs = MonitorCycleRunSerializer(many=True)


class MonitorSeriesPointSerializer(serializers.Serializer):
    """One row per (cycle run, label, estimator); a day with only a reference has nulls elsewhere."""

    date = serializers.DateField()
    cycle = serializers.IntegerField(allow_null=True)
    label = serializers.CharField()
    estimator = serializers.CharField(allow_null=True)
    estimate = serializers.FloatField(allow_null=True)
    se = serializers.FloatField(allow_null=True)
    ci_low = serializers.FloatField(allow_null=True)
    ci_high = serializers.FloatField(allow_null=True)
    n_human = serializers.IntegerField(allow_null=True)
    n_llm = serializers.IntegerField(allow_null=True)
    n_pending = serializers.IntegerField(allow_null=True)
    policy_version = serializers.IntegerField(allow_null=True)
    primary = serializers.BooleanField(allow_null=True)
    human_only_estimate = serializers.FloatField(allow_null=True)
    human_only_ci_low = serializers.FloatField(allow_null=True)
    human_only_ci_high = serializers.FloatField(allow_null=True)
    simulated = serializers.BooleanField(allow_null=True)
    reference = serializers.FloatField(allow_null=True, help_text="the known value that day (MonitorReference)")
    reference_source = serializers.CharField(allow_null=True)


assert tuple(MonitorSeriesPointSerializer().fields) == SERIES_FIELDS  # noqa: S101 - the CSV's columns


class MonitorSeriesSerializer(serializers.Serializer):
    monitor = serializers.CharField()
    columns = serializers.ListField(child=serializers.CharField(), help_text="the points' fields (the CSV header)")
    points = MonitorSeriesPointSerializer(many=True)


class MonitorAlertSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    monitor = serializers.CharField()
    partition = serializers.DateField()
    cycle = serializers.IntegerField()
    rule = serializers.CharField()
    kind = serializers.CharField()
    label = serializers.CharField()
    value = serializers.FloatField()
    threshold = serializers.FloatField()
    message = serializers.CharField()
    created_at = serializers.DateTimeField()
    delivery = serializers.DictField(help_text="status (" + ", ".join(AlertStatus.values) + "), attempts, "
                                               "last_error, next_attempt_at, delivered_at")
    acknowledged = serializers.DictField(allow_null=True, help_text="by, at, reason; null while open")
    page = serializers.CharField()
