"""Evaluation on hand-built pools (known answers), the report files, and the end-to-end path on a local Ray
cluster: sample shards + tiny checkpoints -> score shards -> report."""
import json

import pytest
from helpers.score_data import commit_samples, sample_rows

from mathray.jobs.evaluation import EvaluateConfig, build_pools, cluster_ids, evaluate_pools, greedy_accuracy
from mathray.jobs.report import FILES, markdown_table, write_report
from mathray.core.selectors import build_selectors

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _sample(pid, sid, answer, correct):
    return {"problem_id": pid, "sample_id": sid, "answer": answer, "is_correct": correct}


def _score(pid, sid, v, steps):
    return {"problem_id": pid, "sample_id": sid, "verifier_score": v, "step_scores": steps, "scorer": "v@1"}


# p1: majority "3" is wrong, the verifier prefers "4" (right). p2: a single cluster, right.
# p3: no answer anywhere. Sample rows arrive out of order; one sample of p1 has no SCORES row.
SAMPLES = [_sample("p1", 2, "3", False), _sample("p1", 0, "3", False), _sample("p1", 1, "4", True),
           _sample("p1", 3, " 3", False), _sample("p2", 0, "7", True), _sample("p2", 1, "7", True),
           _sample("p3", 0, None, False), _sample("p3", 1, None, False)]
SCORES = [_score("p1", 0, 0.2, [0.9, 0.2]), _score("p1", 1, 0.9, [0.8, 0.7]), _score("p1", 2, 0.3, [0.5, 0.5]),
          _score("p2", 0, 0.6, [0.6]), _score("p2", 1, 0.4, [0.4]),
          _score("p3", 0, 0.9, [0.9]), _score("p3", 1, 0.9, [0.9])]


def test_cluster_ids_skip_missing_answers():
    ids = cluster_ids(["3", None, "3.0", "4", "  ", "\\frac{1}{2}", "0.5"])
    assert ids[1] is None and ids[4] is None
    assert ids[0] == ids[2] != ids[3] and ids[5] == ids[6] != ids[0]   # equivalence, not string match


def test_build_pools_orders_by_sample_id_and_joins_scores():
    pools = build_pools(SAMPLES, SCORES)
    assert list(pools) == ["p1", "p2", "p3"]
    p1 = pools["p1"]
    assert [c.is_correct for c in p1] == [False, True, False, False]
    assert [c.verifier_score for c in p1] == [0.2, 0.9, 0.3, None]   # sample 3 was never scored
    assert p1[0].cluster == p1[2].cluster == p1[3].cluster != p1[1].cluster
    assert [c.cluster for c in pools["p3"]] == [None, None]


def test_evaluate_pools_known_answers():
    cfg = EvaluateConfig(samples="unused", k=1, top_n=1, k_sweep=[1, 2], trials=20, bootstrap_resamples=50)
    pools = build_pools(SAMPLES, SCORES)
    rep = evaluate_pools(pools, cfg, greedy=greedy_accuracy([{"problem_id": "p2", "is_correct": True}], list(pools)))
    acc = {r["selector"]: r["accuracy"] for r in rep["table"]}
    assert list(acc)[0] == "Pass@1 (greedy)" and acc["Pass@1 (greedy)"] == pytest.approx(1 / 3)
    assert set(acc) == {"Pass@1 (greedy)", *build_selectors(k=1, top_n=1)}
    assert acc["Pass@1 (sample avg)"] == pytest.approx((1 / 4 + 1 + 0) / 3)
    assert acc["Pass@N (oracle)"] == pytest.approx(2 / 3)
    assert acc["Maj1@N"] == pytest.approx(1 / 3)          # p1 majority "3" is wrong
    assert acc["Maj1 (oracle)"] == pytest.approx(1 / 3)
    assert acc["RR.All"] == pytest.approx(2 / 3)          # p1: 0.9 on "4"
    assert acc["RR.Top-1"] == pytest.approx(1 / 3)        # p1: only cluster "3" kept
    assert acc["W.RR"] == pytest.approx(2 / 3)            # p1: 0.9 vs 0.2 + 0.3
    assert acc["PRM BoN (min)"] == pytest.approx(2 / 3)   # p1: min 0.7 for "4"
    assert acc["PRM BoN (last)"] == pytest.approx(2 / 3)
    cost = {r["selector"]: r["cost"] for r in rep["table"]}
    assert cost["Maj1@N"] == 0.0
    assert cost["RR.All"] == pytest.approx((4 / 4 + 2 / 2 + 0) / 3)
    assert cost["RR.Top-1"] == pytest.approx((3 / 4 + 2 / 2 + 0) / 3)
    for r in rep["table"]:
        assert r["ci_low"] <= r["accuracy"] <= r["ci_high"]
    assert rep["pool_size"] == 4 and rep["curves"]["Pass@N (oracle)"]["n"] == [1, 2, 4]
    assert rep["curves"]["Pass@N (oracle)"]["mean"][-1] == pytest.approx(2 / 3)
    assert rep["pass_at_k"]["value"][0] == pytest.approx(acc["Pass@1 (sample avg)"])
    assert [q["k"] for q in rep["cost_sweep"]["RR.Top-K"]] == [1, 2]


def test_without_scores_only_score_free_selectors():
    rep = evaluate_pools(build_pools(SAMPLES, []), EvaluateConfig(trials=2, bootstrap_resamples=10))
    assert [r["selector"] for r in rep["table"]] == ["Pass@1 (sample avg)", "Pass@N (oracle)", "Maj1@N", "Maj8 (oracle)"]
    assert rep["cost_sweep"] == {}


def _check_report_files(out_dir, selectors):
    import matplotlib.image as mpimg

    for name in FILES:
        assert (out_dir / name).is_file(), name
    for png in ("accuracy_vs_n.png", "accuracy_vs_cost.png"):
        data = (out_dir / png).read_bytes()
        assert data.startswith(PNG_MAGIC)
        img = mpimg.imread(out_dir / png)
        assert img.shape[0] > 100 and img.shape[1] > 100
    md = (out_dir / "report.md").read_text()
    rep = json.loads((out_dir / "report.json").read_text())
    for s in selectors:
        assert f"| {s} |" in md, s
    assert [r["selector"] for r in rep["table"]] == list(selectors)
    return rep, md


def test_write_report_files(tmp_path):
    cfg = EvaluateConfig(trials=5, bootstrap_resamples=20, k=2, k_sweep=[1, 2])
    rep = evaluate_pools(build_pools(SAMPLES, SCORES), cfg)
    rep["provenance"] = {"generator": ["g@1"], "split": "test"}
    rep["settings"] = cfg.model_dump(mode="json")
    write_report(rep, str(tmp_path / "report"))
    _, md = _check_report_files(tmp_path / "report", [r["selector"] for r in rep["table"]])
    assert "**generator**" in md and markdown_table(rep) in md


@pytest.mark.slow
@pytest.mark.cluster
def test_end_to_end_samples_to_report(ray_cluster, tmp_path, capsys):
    from mathray.jobs.tiny_model import build_tiny_model
    from rayjobs import evaluate, score

    verifier = build_tiny_model(tmp_path / "verifier", seed=1)
    prm = build_tiny_model(tmp_path / "prm", seed=2)
    run = tmp_path / "run"
    commit_samples(str(run / "samples"), sample_rows(6, 6, seed=0), shards=2)
    greedy = [r for r in sample_rows(6, 1, seed=0)]
    commit_samples(str(run / "greedy"), greedy, shards=1)
    assert score.main(["--set", f"input={run / 'samples'}", "--set", f"output={run / 'scores'}",
                       "--set", f"scorer.verifier={verifier}", "--set", f"scorer.prm={prm}"]) == 0
    assert evaluate.main(["--set", f"samples={run / 'samples'}", "--set", f"scores={run / 'scores'}",
                          "--set", f"greedy_samples={run / 'greedy'}", "--set", "trials=5",
                          "--set", "k=2", "--set", "top_n=3", "--set", "bootstrap_resamples=50"]) == 0
    printed = capsys.readouterr().out
    expected = ["Pass@1 (greedy)", *build_selectors(k=2, top_n=3, use_logprob=True)]   # the rows carry log-probs
    rep, md = _check_report_files(run / "report", expected)
    for s in expected:
        assert f"| {s} |" in printed
    assert rep["num_problems"] == 6 and rep["pool_size"] == 6
    assert rep["provenance"]["generator"] == ["tiny-generator@test"]
    assert rep["provenance"]["scorer (verifier/PRM checkpoints)"][0].startswith("verifier=verifier@")
    assert rep["provenance"]["split"] == "test"
    assert rep["curves"]["RR.All"]["n"] == [1, 2, 4, 6]
    # the greedy run here is sample 0 = the reference solution: always right
    assert next(r for r in rep["table"] if r["selector"] == "Pass@1 (greedy)")["accuracy"] == 1.0
    assert evaluate.main(["--set", f"samples={tmp_path / 'nothing'}"]) == 2   # cannot run as given
    assert "is missing: run the stage that writes it first" in capsys.readouterr().err


def test_greedy_pass_rows_give_pass_at_1_and_never_join_a_pool(tmp_path):
    """Samples with each problem's greedy decode beside them (sample_id N, ``greedy_pass``) give the report of
    the same samples with that decode as a separate greedy run, though the scorer scored the greedy rows highest
    (a pool holding them would pick them); a greedy run given beside such rows is refused."""
    from mathray.core import schemas
    from mathray.jobs.evaluation import build_report
    from mathray.runtime.lineage import InputMismatch
    from mathray.runtime.storage import ShardStore

    n, problems = 3, 4
    rows = sample_rows(problems, n, seed=1)
    greedy = [{**r, "is_correct": i % 2 == 0} for i, r in enumerate(rows[::n])]   # 2 of 4 right
    scores = ShardStore(str(tmp_path / "scores"))
    scores.commit_shard("part-00000", schemas.to_table(
        [_score(r["problem_id"], r["sample_id"], 0.1 * r["sample_id"], [0.5]) for r in rows]
        + [_score(r["problem_id"], n, 0.99, [0.99]) for r in greedy], schemas.SCORES))
    scores.write_manifest()
    commit_samples(str(tmp_path / "with_pass"), rows + [{**r, "sample_id": n, "greedy_pass": True} for r in greedy], 2)
    commit_samples(str(tmp_path / "samples"), rows, 2)
    commit_samples(str(tmp_path / "greedy"), [{**r, "sample_id": 0} for r in greedy], 1)
    labels = ShardStore(str(tmp_path / "labels"))   # true first errors of every row, the greedy decodes' too
    labels.commit_shard("part-00000", schemas.to_table(
        [{**r, "steps": ["s"], "hard_labels": [1], "label_source": "exact"}
         for r in rows + [{**g, "sample_id": n} for g in greedy]], schemas.STEP_LABELS))
    labels.write_manifest()
    settings = {"scores": scores.uri, "trials": 5, "k": 2, "k_sweep": [1, 2], "bootstrap_resamples": 20,
                "step_labels": labels.uri}
    got = build_report(EvaluateConfig(samples=str(tmp_path / "with_pass"), **settings))
    scores_kept = [_score(r["problem_id"], r["sample_id"], 0.1 * r["sample_id"], [0.5]) for r in rows]
    separate = ShardStore(str(tmp_path / "scores_of_samples"))
    separate.commit_shard("part-00000", schemas.to_table(scores_kept, schemas.SCORES))
    separate.write_manifest()
    want = build_report(EvaluateConfig(samples=str(tmp_path / "samples"), greedy_samples=str(tmp_path / "greedy"),
                                       **{**settings, "scores": separate.uri}))
    assert got["pool_size"] == n and got["num_problems"] == problems
    acc = {r["selector"]: r["accuracy"] for r in got["table"]}
    assert acc["Pass@1 (greedy)"] == 0.5
    assert got["table"] == want["table"] and got["curves"] == want["curves"]
    assert (got["first_error"]["labelled"], got["first_error"]["unscored"]) == (problems * n, 0)
    assert got["provenance"]["greedy samples"] == f"{tmp_path / 'with_pass'} (greedy-pass rows)"
    with pytest.raises(InputMismatch, match="4 samples are greedy-pass rows and a greedy run is given"):
        build_report(EvaluateConfig(samples=str(tmp_path / "with_pass"), greedy_samples=str(tmp_path / "greedy"),
                                    **settings))


def test_duplicate_keys_and_scores_of_other_samples_are_refused_with_counts(tmp_path, capsys):
    """A sample counted twice, or a score that belongs to no sample, would change every number of the report:
    the job refuses (exit 2) and says how many."""
    from mathray.core import schemas
    from mathray.runtime.storage import ShardStore
    from rayjobs import evaluate

    rows = sample_rows(3, 2, seed=0)
    samples = commit_samples(str(tmp_path / "samples"), rows, shards=1)
    samples.commit_shard("part-00001", schemas.to_table(rows[:2], schemas.SAMPLES))   # two samples again
    samples.write_manifest()
    scores = ShardStore(str(tmp_path / "scores"))
    scores.commit_shard("part-00000", schemas.to_table(
        [_score(r["problem_id"], r["sample_id"], 0.5, [0.5]) for r in rows]
        + [_score("other-problem", 0, 0.9, [0.9]), _score("other-problem", 1, 0.9, [0.9])], schemas.SCORES))
    scores.write_manifest()
    rc = evaluate.main(["--set", f"samples={samples.uri}", "--set", f"scores={scores.uri}",
                        "--set", f"output={tmp_path / 'report'}"])
    err = capsys.readouterr().err
    assert rc == 2 and "evaluation inputs do not belong together" in err
    assert "2 (problem_id, sample_id) keys occur more than once in the samples (2 extra rows" in err
    assert "2 scores match no sample" in err
    assert not (tmp_path / "report" / "report.json").exists()


def test_scores_computed_from_another_sample_set_are_refused(tmp_path):
    from mathray.jobs.evaluation import check_pools_input
    from mathray.runtime.lineage import InputMismatch
    from mathray.runtime.storage import ShardStore

    rows = sample_rows(2, 2, seed=0)
    commit_samples(str(tmp_path / "samples"), rows, shards=1)
    scores = ShardStore(str(tmp_path / "scores"))
    scores.commit_shard("part-00000", pa_scores(rows))
    scores.write_manifest({"lineage": {"inputs": {"input": "shards@0123456789abcdef"}}})   # other samples' scores
    cfg = EvaluateConfig(samples=str(tmp_path / "samples"), scores=scores.uri)
    with pytest.raises(InputMismatch, match="computed from another sample set"):
        check_pools_input(rows, scores.read_all().to_pylist(), cfg)


def pa_scores(rows):
    from mathray.core import schemas

    return schemas.to_table([_score(r["problem_id"], r["sample_id"], 0.5, [0.5]) for r in rows], schemas.SCORES)
