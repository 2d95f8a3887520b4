"""Shapes of the prevalence API: query and body serializers (validated input), and output ones."""

from __future__ import annotations

from rest_framework import serializers

from prevalence.estimators import ESTIMATORS


class PrevalenceEstimateListQuerySerializer(serializers.Serializer):
    policy = serializers.SlugField(max_length=80, required=False, help_text="only this policy's estimates")
    label = serializers.CharField(max_length=63, required=False, help_text="only this label ('any violation')")
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=100, help_text="newest first; default 100")


class PrevalenceEstimateCreateSerializer(serializers.Serializer):
    """What to estimate: a labeling run on its sample; every estimator and label by default."""

    sample = serializers.CharField(max_length=200, help_text="the sample's name")
    run = serializers.CharField(max_length=200, help_text="the labeling run's name (or id)")
    estimators = serializers.ListField(child=serializers.ChoiceField(choices=ESTIMATORS), min_length=1,
                                       required=False, allow_null=True, default=None,
                                       help_text="default: every estimator the sample's design allows")
    labels = serializers.ListField(child=serializers.CharField(max_length=63), min_length=1, required=False,
                                   allow_null=True, default=None,
                                   help_text="taxonomy labels or 'any violation'; default: all and any violation")
    golden_set = serializers.SlugField(max_length=100, required=False, allow_null=True, default=None,
                                       help_text="check the LLM labels against this golden set")
    golden_set_version = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None,
                                                  help_text="default: the newest frozen version")
    alpha = serializers.FloatField(required=False, default=0.05, min_value=1e-6, max_value=0.5,
                                   help_text="1 − confidence level (default 0.05)")
    allow_pending = serializers.BooleanField(required=False, default=False,
                                             help_text="estimate although items have no label yet (missing at "
                                                       "random within their stratum)")


class PrevalenceGroupSerializer(serializers.Serializer):
    n = serializers.IntegerField()
    n_human = serializers.IntegerField()
    n_pending = serializers.IntegerField()
    share = serializers.FloatField()
    human_mean = serializers.FloatField(allow_null=True)
    llm_mean = serializers.FloatField(allow_null=True)


class PrevalenceStratumSerializer(serializers.Serializer):
    stratum = serializers.CharField()
    N_h = serializers.FloatField()
    n = serializers.IntegerField()
    n_human = serializers.IntegerField()
    estimate = serializers.FloatField()
    se = serializers.FloatField(allow_null=True)
    lam = serializers.FloatField(allow_null=True)
    groups = serializers.DictField(child=PrevalenceGroupSerializer(), help_text="census (routed by rule) and auto")


class PrevalenceClassicalSerializer(serializers.Serializer):
    estimate = serializers.FloatField()
    se = serializers.FloatField(allow_null=True)
    ci = serializers.ListField(child=serializers.FloatField(allow_null=True))


class PrevalenceEstimateSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    policy = serializers.CharField()
    policy_version = serializers.CharField()
    label = serializers.CharField()
    sample = serializers.CharField()
    run = serializers.CharField()
    estimator = serializers.CharField(help_text=", ".join(ESTIMATORS))
    estimate = serializers.FloatField()
    se = serializers.FloatField(allow_null=True)
    ci = serializers.ListField(child=serializers.FloatField(), allow_null=True, help_text="Wald, level 1 − alpha")
    ci_wilson = serializers.ListField(child=serializers.FloatField(), allow_null=True,
                                      help_text="Wilson at Kish's effective n (design-based estimators)")
    convention = serializers.CharField()
    alpha = serializers.FloatField()
    n_human = serializers.IntegerField()
    n_llm = serializers.IntegerField()
    n_pending = serializers.IntegerField()
    effective_n = serializers.FloatField(allow_null=True)
    lam = serializers.FloatField(allow_null=True)
    classical = PrevalenceClassicalSerializer(allow_null=True,
                                              help_text="the human-only estimate on the same human labels")
    strata = PrevalenceStratumSerializer(many=True)
    design = serializers.DictField()
    golden_set_version = serializers.CharField(allow_null=True)
    agreement = serializers.DictField(help_text="LLM vs people on the audit, and vs the golden set; Wilson CIs")
    simulated = serializers.BooleanField(help_text="a voter of the run is the bundled simulator")
    code_version = serializers.DictField()
    created_by = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    page = serializers.CharField(help_text="the estimate's page")
