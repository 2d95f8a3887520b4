"""Input and output shapes of the signals API."""

from __future__ import annotations

from rest_framework import serializers

from evaluation.services import API_MAX_ROWS


class RowErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="0-based index of the row in the request body")
    field = serializers.CharField(allow_null=True)
    reason = serializers.CharField()


class RowErrorsExtraSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="the first bad row")
    field = serializers.CharField(allow_null=True, help_text="its bad field")
    bad_rows = serializers.IntegerField()
    errors = RowErrorSerializer(many=True, help_text="every bad row (the first 200)")


class RowsInvalidSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="`invalid_rows`")
    message = serializers.CharField(help_text="e.g. `rows[3].score: 1.5 is outside [0, 1]; nothing was stored`")
    extra = RowErrorsExtraSerializer()


class SignalSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.CharField()
    policy = serializers.CharField(source="policy.slug")
    output_type = serializers.CharField()
    score_label = serializers.CharField(help_text="score signals: `violating` or a label key")
    description = serializers.CharField()
    owner = serializers.CharField(source="owner.username", allow_null=True, default=None)
    version_count = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class SignalVersionSerializer(serializers.Serializer):
    signal = serializers.CharField(source="signal.name")
    version = serializers.IntegerField(source="number")
    policy_version = serializers.CharField(help_text="the policy version whose taxonomy the labels come from")
    notes = serializers.CharField()
    model_card_url = serializers.CharField()
    commit = serializers.CharField()
    labeling_run = serializers.CharField(source="labeling_run.name", allow_null=True, default=None)
    prompt_version = serializers.CharField(source="prompt_version.sha256", allow_null=True, default=None)
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    scores = serializers.IntegerField(source="score_count")


class SignalDetailSerializer(SignalSerializer):
    versions = SignalVersionSerializer(many=True, help_text="newest first")


class ScoreRowSerializer(serializers.Serializer):
    """One row: the item by (source, external id), and a score and/or a label."""

    source = serializers.CharField(max_length=100)
    external_id = serializers.CharField(max_length=255)
    score = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=1,
                                   help_text="needed by score signals; a label signal's confidence in its label")
    label = serializers.CharField(required=False, allow_blank=True, max_length=63,
                                  help_text="a key of the version's taxonomy; needed by label signals")
    observed_at = serializers.DateTimeField(required=False, allow_null=True, help_text="ISO 8601 with a time zone")


class ScoreBatchInputSerializer(serializers.Serializer):
    """The body as a whole: a list of at most API_MAX_ROWS rows. The rows themselves are checked
    by the service, which names the index and field of every bad one."""

    rows = serializers.ListField(child=serializers.JSONField(), min_length=1, max_length=API_MAX_ROWS)


class UnknownItemSerializer(serializers.Serializer):
    source = serializers.CharField()
    external_id = serializers.CharField()
    line = serializers.IntegerField(help_text="the row's index")


class ScoreBatchResultSerializer(serializers.Serializer):
    import_id = serializers.IntegerField(source="pk")
    imported = serializers.IntegerField()
    unknown = serializers.IntegerField(help_text="rows naming an item that does not exist (not stored)")
    unknown_items = UnknownItemSerializer(many=True, help_text="the first 100 of them")


class ScoreSerializer(serializers.Serializer):
    source = serializers.CharField(source="item.source")
    external_id = serializers.CharField(source="item.external_id")
    score = serializers.FloatField(allow_null=True)
    label = serializers.CharField()
    observed_at = serializers.DateTimeField(allow_null=True)


class ScorePageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ScoreSerializer(many=True)


# --- evaluations -------------------------------------------------------------------------------

_UNIT = {"min_value": 0, "max_value": 1, "required": False, "allow_null": True, "default": None}


def _one_threshold_rule(attrs: dict) -> dict:
    """Evaluations and comparisons take at most one of the three threshold rules."""
    given = [name for name in ("threshold", "target_precision", "max_fpr") if attrs.get(name) is not None]
    if len(given) > 1:
        raise serializers.ValidationError({given[1]: [f"give at most one of threshold, target_precision and "
                                                      f"max_fpr (got {', '.join(given)})"]})
    return attrs


class EvaluationCreateSerializer(serializers.Serializer):
    """What to evaluate, and how. At most one of ``threshold``, ``target_precision`` and ``max_fpr``."""

    signal = serializers.SlugField(max_length=100, help_text="the signal's name")
    version = serializers.IntegerField(min_value=1, help_text="the signal version's number")
    golden_set = serializers.SlugField(max_length=100, help_text="the golden set's name")
    golden_set_version = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None,
                                                  help_text="default: the newest frozen version")
    threshold = serializers.FloatField(**_UNIT, help_text="positive when score >= threshold (default 0.5)")
    target_precision = serializers.FloatField(**_UNIT, help_text="choose the threshold with the largest recall at "
                                                                 "precision >= this")
    max_fpr = serializers.FloatField(**_UNIT, help_text="choose the threshold with the largest recall at FPR <= this")
    slice_by = serializers.CharField(max_length=100, required=False, allow_blank=True, default="",
                                     help_text="an item metadata key")
    violating_labels = serializers.ListField(child=serializers.CharField(max_length=63), min_length=1,
                                             required=False, allow_null=True, default=None,
                                             help_text="default: the labels marked as violations")
    n_resamples = serializers.IntegerField(min_value=1, max_value=10_000, default=1000)
    seed = serializers.IntegerField(min_value=0, max_value=2**32 - 1, default=0)

    def validate(self, attrs: dict) -> dict:
        return _one_threshold_rule(attrs)


class EvaluationListQuerySerializer(serializers.Serializer):
    signal = serializers.SlugField(max_length=100, required=False, help_text="only this signal's evaluations")
    version = serializers.IntegerField(min_value=1, required=False, help_text="with `signal`: only this version")
    golden_set = serializers.SlugField(max_length=100, required=False, help_text="only on this golden set")
    limit = serializers.IntegerField(min_value=1, max_value=500, default=100, help_text="newest first; default 100")

    def validate(self, attrs: dict) -> dict:
        if attrs.get("version") is not None and not attrs.get("signal"):
            raise serializers.ValidationError({"version": ["needs `signal`"]})
        return attrs


class EvaluationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    signal = serializers.CharField(source="signal_version.signal.name")
    signal_version = serializers.IntegerField(source="signal_version.number")
    golden_set = serializers.CharField(source="golden_set_version.golden_set.name")
    golden_set_version = serializers.IntegerField(source="golden_set_version.number")
    golden_set_digest = serializers.CharField()
    options = serializers.DictField(help_text="threshold | target_precision | max_fpr, slice_by, violating_labels, "
                                              "bootstrap")
    code_version = serializers.DictField(help_text="touchstone's version and git commit (or why none)")
    score_count = serializers.IntegerField(help_text="the signal version's scores used (id <= max_score_id)")
    max_score_id = serializers.IntegerField(allow_null=True)
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    page = serializers.SerializerMethodField(help_text="the evaluation's page")

    def get_page(self, evaluation: object) -> str:
        return f"/evaluations/{evaluation.pk}/"  # type: ignore[attr-defined]


class EvaluationDetailSerializer(EvaluationSerializer):
    document = serializers.DictField(help_text="the results: coverage, binary, per_label, confusion_matrix, "
                                               "cohen_kappa, scores, calibration, slices, errors (see the README)")


# --- comparisons -------------------------------------------------------------------------------


class ComparisonCreateSerializer(serializers.Serializer):
    """Which two versions to compare (B − A) on which golden-set version, and how. At most one of
    ``threshold``, ``target_precision`` and ``max_fpr`` (the threshold rule, applied to each
    score signal on its own)."""

    signal_a = serializers.SlugField(max_length=100, help_text="A's signal (the old version)")
    version_a = serializers.IntegerField(min_value=1, help_text="A's version number")
    signal_b = serializers.SlugField(max_length=100, required=False, default=None, allow_null=True,
                                     help_text="B's signal (the new version); default: A's signal")
    version_b = serializers.IntegerField(min_value=1, help_text="B's version number")
    golden_set = serializers.SlugField(max_length=100, help_text="the golden set's name")
    golden_set_version = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None,
                                                  help_text="default: the newest frozen version")
    threshold = serializers.FloatField(**_UNIT, help_text="positive when score >= threshold (default 0.5)")
    target_precision = serializers.FloatField(**_UNIT, help_text="each score signal at the threshold with the "
                                                                 "largest recall at precision >= this")
    max_fpr = serializers.FloatField(**_UNIT, help_text="each score signal at the threshold with the largest recall "
                                                        "at FPR <= this; also Δrecall@FPR's bound (default 0.01)")
    slice_by = serializers.CharField(max_length=100, required=False, allow_blank=True, default="",
                                     help_text="an item metadata key")
    n_resamples = serializers.IntegerField(min_value=1, max_value=10_000, default=1000)
    seed = serializers.IntegerField(min_value=0, max_value=2**32 - 1, default=0)

    def validate(self, attrs: dict) -> dict:
        attrs["signal_b"] = attrs.get("signal_b") or attrs["signal_a"]
        return _one_threshold_rule(attrs)


class ComparisonListQuerySerializer(serializers.Serializer):
    signal = serializers.SlugField(max_length=100, required=False,
                                   help_text="only comparisons with this signal (as A or B)")
    golden_set = serializers.SlugField(max_length=100, required=False, help_text="only on this golden set")
    limit = serializers.IntegerField(min_value=1, max_value=500, default=100, help_text="newest first; default 100")


class ComparisonSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    signal_a = serializers.CharField(source="signal_version_a.signal.name")
    version_a = serializers.IntegerField(source="signal_version_a.number")
    signal_b = serializers.CharField(source="signal_version_b.signal.name")
    version_b = serializers.IntegerField(source="signal_version_b.number")
    golden_set = serializers.CharField(source="golden_set_version.golden_set.name")
    golden_set_version = serializers.IntegerField(source="golden_set_version.number")
    golden_set_digest = serializers.CharField()
    options = serializers.DictField(help_text="threshold | target_precision | max_fpr, slice_by, bootstrap")
    code_version = serializers.DictField(help_text="touchstone's version and git commit (or why none)")
    score_count_a = serializers.IntegerField(help_text="A's scores used (id <= max_score_id_a)")
    max_score_id_a = serializers.IntegerField(allow_null=True)
    score_count_b = serializers.IntegerField(help_text="B's scores used (id <= max_score_id_b)")
    max_score_id_b = serializers.IntegerField(allow_null=True)
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    page = serializers.SerializerMethodField(help_text="the comparison's page")

    def get_page(self, comparison: object) -> str:
        return f"/comparisons/{comparison.pk}/"  # type: ignore[attr-defined]


class ComparisonDetailSerializer(ComparisonSerializer):
    document = serializers.DictField(help_text="the results, B − A: coverage, thresholds, mcnemar, binary, "
                                               "per_label, slices, flips (see the README)")
