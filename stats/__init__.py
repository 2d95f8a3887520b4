"""Agreement statistics for golden sets: pure functions, importable without Django.

>>> from stats import krippendorff_alpha
>>> units = [{"ann1": "ok", "ann2": "ok"}, {"ann1": "bad", "ann2": "bad", "ann3": "ok"}]
>>> krippendorff_alpha(units).value is not None
True

See :mod:`stats.agreement` for the input conventions.
"""

from .agreement import (
    CountTable,
    Estimate,
    cohen_kappa,
    count_table,
    fleiss_kappa,
    gwet_ac1,
    krippendorff_alpha,
    per_label_alpha,
    percent_agreement,
)
from .resampling import bootstrap_ci
from .summary import accuracy_against_gold, agreement_summary, pairwise_cohen_kappa

__all__ = [
    "CountTable",
    "Estimate",
    "accuracy_against_gold",
    "agreement_summary",
    "bootstrap_ci",
    "cohen_kappa",
    "count_table",
    "fleiss_kappa",
    "gwet_ac1",
    "krippendorff_alpha",
    "pairwise_cohen_kappa",
    "per_label_alpha",
    "percent_agreement",
]

# Prevalence estimators (issue 15); see stats.prevalence for the conventions.
from .prevalence import (  # noqa: E402
    hajek_mean,
    hajek_mean_ci,
    horvitz_thompson,
    ppi_mean,
    stratified_ppi_mean,
    stratified_prevalence,
    wilson_interval,
)

__all__ += [
    "hajek_mean",
    "hajek_mean_ci",
    "horvitz_thompson",
    "ppi_mean",
    "stratified_ppi_mean",
    "stratified_prevalence",
    "wilson_interval",
]
