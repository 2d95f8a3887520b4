"""Golden-set pages (staff): a version's statistics, charts, diff and export links."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils.safestring import mark_safe

from goldsets import charts
from goldsets.exports import csv_chunks, goldset_version_verify, jsonl_chunks, write_parquet
from goldsets.models import GoldenSetVersion
from goldsets.selectors import goldset_get, goldset_version_diff, goldset_version_get, goldset_version_list
from touchstone.roles import page_permission_required, permission_require

CONTENT_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8",
                 "parquet": "application/vnd.apache.parquet"}
HEATMAP_MAX_LABELERS = 30
DIFF_ROWS_SHOWN = 500


@page_permission_required("goldsets.view_goldenset", to="view golden sets")
def goldset_detail(request: HttpRequest, name: str) -> HttpResponse:
    golden_set = goldset_get(name=name)
    return render(request, "goldsets/goldset_detail.html", {
        "golden_set": golden_set, "versions": goldset_version_list(golden_set=golden_set)})


@page_permission_required("goldsets.view_goldenset", to="view golden sets")
def version_detail(request: HttpRequest, name: str, number: int) -> HttpResponse:
    version = goldset_version_get(name=name, number=number)
    stats = version.stats
    labelers = sorted(stats.get("labelers", []), key=lambda row: -row["items"])[:HEATMAP_MAX_LABELERS]
    names = sorted(row["labeler"] for row in labelers)
    diff = goldset_version_diff(old=version.parent, new=version) if version.parent else None
    agreement_rows = [("Percent agreement", stats.get("percent_agreement")),
                      ("Fleiss' κ", stats.get("fleiss_kappa")),
                      ("Krippendorff's α", stats.get("krippendorff_alpha")),
                      ("Gwet's AC1", stats.get("gwet_ac1"))]
    return render(request, "goldsets/version_detail.html", {
        "version": version, "stats": stats, "agreement_rows": agreement_rows,
        "labels_svg": mark_safe(charts.bar_chart(version.label_distribution, title="gold label distribution")),
        "interval_svg": mark_safe(charts.interval_chart(agreement_rows)),
        "heatmap_svg": mark_safe(charts.kappa_heatmap(names, stats.get("pairwise_cohen_kappa", []))),
        "per_label": sorted(stats.get("per_label_alpha", {}).items()),
        "diff": diff, "formats": list(CONTENT_TYPES)})


@page_permission_required("goldsets.view_goldenset", to="view golden sets")
def version_diff(request: HttpRequest, name: str, old: int, new: int) -> HttpResponse:
    diff = goldset_version_diff(old=goldset_version_get(name=name, number=old),
                                new=goldset_version_get(name=name, number=new))
    return render(request, "goldsets/version_diff.html", {"diff": diff, "name": name, "limit": DIFF_ROWS_SHOWN})


def export_response(version: GoldenSetVersion, fmt: str, *, raw_ids: bool = False) -> HttpResponse:
    """Verify the digest, then stream the export (Parquet via a temporary file: it ends with a footer)."""
    goldset_version_verify(version=version)  # before the first byte: a response cannot be taken back
    filename = f"{version.golden_set.name}-v{version.number}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"', "X-Golden-Set-Digest": version.digest}
    if fmt == "parquet":
        spool = tempfile.TemporaryFile()
        write_parquet(version, spool, raw_ids=raw_ids)
        spool.seek(0)
        return FileResponse(spool, content_type=CONTENT_TYPES[fmt], headers=headers)
    chunks: Iterator[bytes] = (jsonl_chunks if fmt == "jsonl" else csv_chunks)(version, raw_ids=raw_ids)
    return StreamingHttpResponse(chunks, content_type=CONTENT_TYPES[fmt], headers=headers)


@page_permission_required("goldsets.view_goldenset", to="view golden sets")
def version_export(request: HttpRequest, name: str, number: int, fmt: str) -> HttpResponse:
    if fmt not in CONTENT_TYPES:
        raise Http404(f"no export format {fmt!r}")
    version = goldset_version_get(name=name, number=number)
    raw_ids = request.GET.get("raw_ids") == "1"
    if raw_ids:
        permission_require(request.user, "goldsets.view_raw_labeler_ids", to="export raw labeler ids")
    return export_response(version, fmt, raw_ids=raw_ids)
