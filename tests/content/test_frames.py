"""Drawing from a Parquet/CSV frame in bounded memory (content.frames): exact probabilities for
equal sizes, πps with certainty capping, determinism, partition independence, hostile input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from content import frames
from content.frames import Design, FrameError, draw, merge_candidates, open_frame, partition_candidates
from content.sampling import pps_probabilities


def make_table(n: int = 3000, seed: int = 0, heavy: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    impressions = rng.integers(0, 50, n).astype(np.int64)
    impressions[:heavy] = 200_000  # a few viral rows: certainty units
    return pa.table({
        "id": (np.arange(n) * 13 + 5).astype(np.int64),
        "impressions": impressions,
        "country": rng.choice(["NG", "IN", "US", "BR"], n, p=[0.5, 0.3, 0.15, 0.05]),
        "score": rng.random(n),
        "text": [f"post {i}" for i in range(n)],
    })


def members(result: frames.FrameDraw) -> dict[int, float]:
    return dict(zip(result.members.column("id").to_pylist(), result.members.column("pi").to_pylist(), strict=True))


@pytest.fixture
def table() -> pa.Table:
    return make_table(heavy=3)


@pytest.fixture
def parquet(tmp_path: Path, table: pa.Table) -> str:
    path = tmp_path / "frame.parquet"
    pq.write_table(table, path, row_group_size=400)
    return str(path)


def test_uniform_is_an_exact_srs_with_pi_n_over_N(parquet: str) -> None:
    result = draw(open_frame(parquet), Design("uniform", 120, seed=7), batch_rows_=500)
    got = members(result)
    assert len(got) == 120 and set(got.values()) == {120 / 3000}
    assert result.plan.frame_size == 3000 and result.passes == 1
    # bottom-n of the keyed hash: the same 120 ids as sorting every row's u by hand
    ids = pa.array((np.arange(3000) * 13 + 5).astype(np.int64))
    u = frames.unit_uniforms(ids, 7)
    assert set(got) == set(ids.to_numpy()[np.argsort(u)[:120]].tolist())


def test_stratified_has_proportional_n_h_and_pi_n_h_over_N_h(parquet: str, table: pa.Table) -> None:
    result = draw(open_frame(parquet), Design("stratified", 200, seed=1, stratify_by="country"), batch_rows_=500)
    counts = dict(zip(*np.unique(table.column("country").to_numpy(zero_copy_only=False), return_counts=True),
                      strict=True))
    quotas = {h: 200 * n / 3000 for h, n in counts.items()}
    assert {h: s["frame"] for h, s in result.strata.items()} == counts
    for h, info in result.strata.items():
        assert abs(info["sample"] - quotas[h]) < 1  # largest remainder
    assert sum(s["sample"] for s in result.strata.values()) == 200
    country = dict(zip(table.column("id").to_pylist(), table.column("country").to_pylist(), strict=True))
    for row in result.members.to_pylist():
        assert row["stratum"] == country[row["id"]]
        assert row["pi"] == pytest.approx(result.strata[row["stratum"]]["sample"] / counts[row["stratum"]])
    assert (1 / result.members.column("pi").to_numpy()).sum() == pytest.approx(3000)  # HT estimate of N exact


def test_impression_weighted_pi_are_pps_with_certainty_capping(parquet: str, table: pa.Table) -> None:
    result = draw(open_frame(parquet), Design("uniform", 100, seed=3, weight_column="impressions"), batch_rows_=500)
    weights = table.column("impressions").to_numpy().astype(float)
    expected = pps_probabilities(weights, 100)  # the in-database design's capping, over the whole frame
    by_id = dict(zip(table.column("id").to_pylist(), expected, strict=True))
    got = members(result)
    assert len(got) == 100
    for identifier, pi in got.items():
        assert pi == pytest.approx(by_id[identifier], rel=1e-9)
    heavy = table.column("id").to_pylist()[:3]
    assert all(got[h] == 1.0 for h in heavy) and result.strata[""]["certain"] == 3
    assert expected.sum() == pytest.approx(100)
    assert all(by_id[i] > 0 for i in got)  # no row without views is drawn
    assert result.strata[""]["positive"] == int((weights > 0).sum())


def test_certainty_capping_by_hand(tmp_path: Path) -> None:
    # sizes 10, 1 × 10, n = 3: 3·10/20 > 1, so the big unit is certain; the rest share n' = 2 over 10: 0.2 each
    path = tmp_path / "hand.parquet"
    pq.write_table(pa.table({"id": list(range(11)), "impressions": [10] + [1] * 10}), path)
    result = draw(open_frame(str(path)), Design("uniform", 3, seed=0, weight_column="impressions"))
    got = members(result)
    assert got[0] == 1.0 and len(got) == 3
    assert [p for i, p in got.items() if i != 0] == pytest.approx([0.2, 0.2])


def test_certainty_matches_pps_probabilities_on_random_frames() -> None:
    rng = np.random.default_rng(11)
    for _ in range(200):
        sizes = rng.pareto(0.8, rng.integers(5, 60)) + 0.01
        n = int(rng.integers(1, len(sizes)))
        pi = pps_probabilities(sizes, n)
        c, _ = frames.certainty(np.sort(sizes)[::-1], float(sizes.sum()), n)
        assert c == int((pi >= 1.0 - 1e-12).sum())


def test_score_weighted_uses_the_floor(tmp_path: Path) -> None:
    scores = np.r_[np.zeros(50), np.full(50, 0.5)]
    path = tmp_path / "scores.parquet"
    pq.write_table(pa.table({"id": np.arange(100), "score": scores}), path)
    result = draw(open_frame(str(path)), Design("score_weighted", 10, seed=2, score_column="score", floor=0.05))
    expected = pps_probabilities(np.maximum(scores, 0.05), 10)
    for identifier, pi in members(result).items():
        assert pi == pytest.approx(expected[identifier])


def test_same_seed_same_sample_other_seed_other_sample(parquet: str) -> None:
    design = Design("uniform", 50, seed=5, weight_column="impressions")
    a = members(draw(open_frame(parquet), design, batch_rows_=300))
    b = members(draw(open_frame(parquet), design, batch_rows_=1000))  # batching does not matter
    c = members(draw(open_frame(parquet), Design("uniform", 50, seed=6, weight_column="impressions")))
    assert a == b and set(a) != set(c)


@pytest.mark.parametrize("design", [
    Design("uniform", 80, seed=9),
    Design("uniform", 80, seed=9, weight_column="impressions"),
    Design("stratified", 80, seed=9, stratify_by="country"),
    Design("stratified", 80, seed=9, stratify_by="country", weight_column="impressions"),
    Design("score_weighted", 80, seed=9, score_column="score"),
])
def test_partitioned_draw_equals_the_local_draw(parquet: str, table: pa.Table, design: Design) -> None:
    local = draw(open_frame(parquet), design, batch_rows_=700)
    plan = frames.Plan.from_dict(local.plan.as_dict())  # what a Spark driver would broadcast
    rng = np.random.default_rng(0)
    shuffled = table.take(rng.permutation(table.num_rows))
    cuts = np.sort(rng.choice(np.arange(1, table.num_rows), 9, replace=False))
    parts = [shuffled.slice(a, b - a) for a, b in zip(np.r_[0, cuts], np.r_[cuts, table.num_rows], strict=True)]
    merged = merge_candidates([partition_candidates(p.to_batches()[0] if p.num_rows else p, plan) for p in parts],
                              plan)
    assert merged.column("id").to_pylist() == local.members.column("id").to_pylist()
    assert merged.column("pi").to_pylist() == pytest.approx(local.members.column("pi").to_pylist())
    assert merged.column("stratum").to_pylist() == local.members.column("stratum").to_pylist()


def test_two_pass_fallback_gives_the_same_sample(parquet: str) -> None:
    design = Design("stratified", 90, seed=4, stratify_by="country", weight_column="impressions")
    one = draw(open_frame(parquet), design, batch_rows_=500)
    two = draw(open_frame(parquet), design, batch_rows_=500, budget=100)
    assert (one.passes, two.passes) == (1, 2)
    assert members(one) == pytest.approx(members(two))


def test_csv_parquet_and_hive_directory_give_the_same_sample(tmp_path: Path, table: pa.Table, parquet: str) -> None:
    csv_path = tmp_path / "frame.csv"
    pacsv.write_csv(table, csv_path)
    hive = tmp_path / "hive"
    pq.write_to_dataset(table, hive, partition_cols=["country"])
    (hive / "_SUCCESS").write_text("")
    split = tmp_path / "parts"
    split.mkdir()
    for k in range(4):
        pq.write_table(table.slice(k * 750, 750), split / f"part-{k:05d}.parquet")
    design = Design("stratified", 60, seed=8, stratify_by="country", weight_column="impressions")
    reference = members(draw(open_frame(parquet), design))
    for location in [str(csv_path), str(hive), str(split / "part-*.parquet"), str(split)]:
        frame = open_frame(location)
        assert members(draw(frame, design, batch_rows_=400)) == pytest.approx(reference), location
    assert open_frame(str(hive)).dataset.schema.field("country").type == pa.string()
    assert len(open_frame(str(split / "*.parquet")).paths) == 4


def test_member_rows_reads_content_and_partition_keys(tmp_path: Path, table: pa.Table) -> None:
    hive = tmp_path / "hive"
    pq.write_to_dataset(table, hive, partition_cols=["country"])
    frame = open_frame(str(hive))
    result = draw(frame, Design("uniform", 25, seed=1))
    rows = frames.member_rows(frame, result.members, ["id", "text", "country"])
    truth = {r["id"]: r for r in table.to_pylist()}
    assert [r["id"] for r in rows] == result.members.column("id").to_pylist()
    for row in rows:
        assert row["text"] == truth[row["id"]]["text"] and row["country"] == truth[row["id"]]["country"]


def test_order_sampling_inclusion_frequencies_are_close_to_the_stated_pi() -> None:
    """2,000 draws of a 200-row frame, vectorised: the rows' uniforms under 2,000 seeds, keys
    u/π (certainty units first), the n smallest per draw."""
    rng = np.random.default_rng(3)
    sizes = rng.gamma(2.0, 5.0, 200) + 1
    sizes[:2] = 400  # certainty units
    n, draws = 20, 2000
    ids = pa.array(np.arange(200, dtype=np.int64))
    table = pa.table({"id": ids, "impressions": sizes})
    plan = frames.make_plan(frames.Totals({"": 200}, {"": 200}, {"": float(sizes.sum())}),
                            Design("uniform", n, 0, weight_column="impressions"),
                            {"": np.sort(sizes)[::-1][:n]})
    sp = plan.strata[""]
    certain = sizes >= sp.certainty_size
    pi = np.where(certain, 1.0, sp.scale * sizes)
    assert pi.sum() == pytest.approx(n) and certain.sum() == 2
    u = np.stack([frames.unit_uniforms(ids, seed) for seed in range(draws)])
    keys = np.where(certain, u - 1.0, u / pi)
    chosen = np.argpartition(keys, n - 1, axis=1)[:, :n]
    frequency = np.bincount(chosen.ravel(), minlength=200) / draws
    se = np.sqrt(pi * (1 - pi) / draws)
    assert np.all(frequency[certain] == 1.0)
    # sequential Poisson's approximation error is small at these π (<= 0.3): within 4 SE + 0.01
    assert np.all(np.abs(frequency - pi) <= 4 * se + 0.01), np.max(np.abs(frequency - pi) - 4 * se)
    # the module's own draw for one seed is one of these rows
    local = partition_candidates(table, plan)
    assert sorted(local.column("id").to_pylist()) == sorted(np.argsort(keys[0])[:n].tolist())


def test_srs_inclusion_frequencies_are_n_over_N() -> None:
    ids = pa.array(np.arange(200, dtype=np.int64))
    u = np.stack([frames.unit_uniforms(ids, seed) for seed in range(2000)])
    chosen = np.argpartition(u, 19, axis=1)[:, :20]
    frequency = np.bincount(chosen.ravel(), minlength=200) / 2000
    assert np.all(np.abs(frequency - 0.1) <= 4 * np.sqrt(0.1 * 0.9 / 2000))


def test_text_ids_hash_deterministically() -> None:
    ids = pa.array([f"item-{i}" for i in range(1000)])
    a, b = frames.unit_uniforms(ids, 1), frames.unit_uniforms(ids, 1)
    assert np.array_equal(a, b) and not np.array_equal(a, frames.unit_uniforms(ids, 2))
    assert 0 < a.min() and a.max() < 1 and abs(a.mean() - 0.5) < 0.05


# --- hostile input --------------------------------------------------------------------------


def write(tmp_path: Path, name: str, **columns) -> str:
    path = tmp_path / name
    pq.write_table(pa.table(columns), path)
    return str(path)


def error_of(location: str, design: Design, **kwargs) -> str:
    with pytest.raises(FrameError) as caught:
        draw(open_frame(location), design, **kwargs)
    return str(caught.value)


def test_missing_file_and_empty_glob(tmp_path: Path) -> None:
    with pytest.raises(FrameError, match="no such file"):
        open_frame(str(tmp_path / "nope.parquet"))
    with pytest.raises(FrameError, match="matches no file"):
        open_frame(str(tmp_path / "*.parquet"))


def test_missing_column_is_named(parquet: str) -> None:
    message = error_of(parquet, Design("uniform", 5, 1, weight_column="views"))
    assert "column 'views'" in message and "no such column" in message and "impressions" in message


def test_negative_null_and_text_weights_name_file_row_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "neg.parquet", id=[1, 2, 3], impressions=[1.0, -2.0, 3.0])
    assert error_of(path, Design("uniform", 1, 1, weight_column="impressions")) == (
        f"{path}: row 2: column 'impressions': -2.0: weights must not be negative")
    path = write(tmp_path, "null.parquet", id=[1, 2, 3], impressions=[1.0, 2.0, None])
    assert "row 3: column 'impressions': empty (null) value" in error_of(
        path, Design("uniform", 1, 1, weight_column="impressions"))
    path = write(tmp_path, "text.parquet", id=[1, 2, 3], impressions=["1", "lots", "3"])
    assert "row 2: column 'impressions': 'lots' is not a number" in error_of(
        path, Design("uniform", 1, 1, weight_column="impressions"))
    path = write(tmp_path, "nan.parquet", id=[1, 2], impressions=[1.0, float("nan")])
    assert "row 2" in error_of(path, Design("uniform", 1, 1, weight_column="impressions"))


def test_null_and_duplicate_ids(tmp_path: Path) -> None:
    path = write(tmp_path, "nullid.parquet", id=[1, None, 3])
    assert error_of(path, Design("uniform", 1, 1)) == f"{path}: row 2: column 'id': empty (null) id"
    path = write(tmp_path, "dup.parquet", id=[1, 2, 3, 2, 5])
    message = error_of(path, Design("uniform", 5, 1))
    assert "id 2 occurs more than once" in message and "row 2" in message and "row 4" in message


def test_size_larger_than_the_frame(tmp_path: Path) -> None:
    path = write(tmp_path, "small.parquet", id=[1, 2, 3], impressions=[1, 0, 2])
    assert "sample size 4 exceeds the frame's 3 rows" in error_of(path, Design("uniform", 4, 1))
    assert "exceeds the frame's 2 rows with a positive size" in error_of(
        path, Design("uniform", 3, 1, weight_column="impressions"))


def test_csv_with_a_bad_row_names_file_and_row(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("id,impressions\n" + "".join(f"{i},{i}\n" for i in range(1, 50)) + "50,1,extra\n")
    message = error_of(str(path), Design("uniform", 2, 1, weight_column="impressions"))
    assert str(path) in message and "Row #51" in message and "Expected 2 columns, got 3" in message
    path = tmp_path / "text.csv"
    path.write_text("id,impressions\n" + "".join(f"{i},{i}\n" for i in range(1, 5000)) + "5000,many\n")
    message = error_of(str(path), Design("uniform", 2, 1, weight_column="impressions"))
    assert str(path) in message and "'impressions'" in message and "many" in message


def test_design_options_are_checked(parquet: str) -> None:
    with pytest.raises(FrameError, match="needs --stratify-by"):
        Design("stratified", 5, 1).check()
    with pytest.raises(FrameError, match="needs --score-column"):
        Design("score_weighted", 5, 1).check()
    with pytest.raises(FrameError, match="--floor"):
        Design("score_weighted", 5, 1, score_column="score", floor=0).check()
    with pytest.raises(FrameError, match="goes with --design stratified"):
        Design("uniform", 5, 1, stratify_by="country").check()


def test_member_rows_from_a_csv_frame_with_text_ids(tmp_path: Path) -> None:
    path = tmp_path / "frame.csv"
    path.write_text("id,impressions,text\n" + "".join(f"post-{i},{i % 5},body {i}\n" for i in range(500)))
    frame = open_frame(str(path))
    result = draw(frame, Design("uniform", 30, seed=2, weight_column="impressions"), batch_rows_=128)
    rows = frames.member_rows(frame, result.members, ["id", "text"])
    assert [r["id"] for r in rows] == result.members.column("id").to_pylist()
    for row in rows:
        number = int(row["id"].split("-")[1])
        assert row["text"] == f"body {number}" and number % 5 != 0
        assert row["_line"] == number + 2  # the header is line 1


def test_urls_open_through_pyarrow_filesystems(tmp_path: Path, table: pa.Table, parquet: str) -> None:
    hive = tmp_path / "hive"
    pq.write_to_dataset(table, hive, partition_cols=["country"])
    design = Design("uniform", 40, seed=3, weight_column="impressions")
    reference = members(draw(open_frame(parquet), design))
    for url in [f"file://{hive}", f"file://{hive}/country=*/*.parquet", f"file://{parquet}"]:
        assert members(draw(open_frame(url), design)) == pytest.approx(reference), url
    with pytest.raises(FrameError, match="no such file"):
        open_frame(f"file://{tmp_path}/nope")
    with pytest.raises(FrameError, match="matches no file"):
        open_frame(f"file://{tmp_path}/*.csv")


@settings(max_examples=150, deadline=None)
@given(sizes=st.lists(st.one_of(st.integers(0, 50), st.integers(1000, 100_000)), min_size=2, max_size=80),
       data=st.data(), seed=st.integers(0, 2**40), cuts=st.integers(1, 6))
def test_plan_probabilities_are_pps_and_any_partitioning_draws_the_same(sizes, data, seed, cuts) -> None:
    weights = np.asarray(sizes, dtype=float)
    positive = int((weights > 0).sum())
    assume(positive >= 1)
    n = data.draw(st.integers(1, positive))
    design = Design("uniform", n, seed, weight_column="impressions")
    largest = np.sort(weights)[::-1][:n]
    plan = frames.make_plan(frames.Totals({"": len(sizes)}, {"": positive}, {"": float(weights.sum())}), design,
                            {"": largest})
    sp = plan.strata[""]
    pi = np.where((weights >= sp.certainty_size) & (weights > 0), 1.0, np.minimum(sp.scale * weights, 1.0))
    assert pi.sum() == pytest.approx(n)  # Σ π over the frame is n
    # pps_probabilities is for positive sizes (score-weighted sizes have a floor); rows with 0 views get π = 0
    assert pi[weights > 0] == pytest.approx(pps_probabilities(weights[weights > 0], n), abs=1e-9)
    assert np.all(pi[weights == 0] == 0)
    table = pa.table({"id": np.arange(len(sizes), dtype=np.int64) * 11, "impressions": weights})
    whole = merge_candidates([partition_candidates(table, plan)], plan)
    bounds = np.linspace(0, len(sizes), cuts + 1).astype(int)
    parts = merge_candidates([partition_candidates(table.slice(a, b - a), plan)
                              for a, b in zip(bounds[:-1], bounds[1:], strict=True)], plan)
    assert whole.num_rows == n and parts.column("id").to_pylist() == whole.column("id").to_pylist()
    drawn = whole.column("id").to_numpy() // 11
    assert np.all(pi[drawn] > 0) and np.all(np.isin(np.flatnonzero(pi == 1.0), drawn))  # certainty units drawn


def test_parallel_batch_filters_draw_the_same_sample(parquet: str, monkeypatch) -> None:
    from content.frames import scan

    design = Design("stratified", 70, seed=12, stratify_by="country", weight_column="impressions")
    monkeypatch.setattr(scan, "WORKERS", 1)
    one = members(draw(open_frame(parquet), design, batch_rows_=200))
    monkeypatch.setattr(scan, "WORKERS", 3)
    three = members(draw(open_frame(parquet), design, batch_rows_=200))
    assert one == three


def test_rows_without_a_stratum_value_form_the_missing_stratum(tmp_path: Path) -> None:
    path = tmp_path / "nulls.parquet"
    country = ["NG", None, "IN"] * 100
    pq.write_table(pa.table({"id": np.arange(300), "country": pa.array(country, pa.string())}), path)
    result = draw(open_frame(str(path)), Design("stratified", 30, seed=1, stratify_by="country"), batch_rows_=64)
    assert result.strata == {"(missing)": {"frame": 100, "sample": 10}, "IN": {"frame": 100, "sample": 10},
                             "NG": {"frame": 100, "sample": 10}}
    assert set(result.members.column("pi").to_pylist()) == {0.1}
