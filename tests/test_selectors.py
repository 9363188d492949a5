"""Every selector on hand-built pools whose answer is known in advance (ties, no answer, one cluster,
K larger than the number of clusters), and the evaluator cost of each."""
import pytest

from mathray.core.selectors import (Candidate, aggregate_steps, build_selectors, logprob_best_of_n, majk_oracle,
                               majority, majority_of_top_n, oracle, orm_best_of_n, prm_best_of_n, prm_vote,
                               ranked_clusters, rerank_all, rerank_top_k, sample_average, top_k_indices,
                               weighted_rerank, weighted_rerank_top_k)


def C(cluster, correct=False, v=None, steps=None):
    return Candidate(is_correct=correct, cluster=cluster, verifier_score=v,
                     step_scores=tuple(steps) if steps is not None else None)


# Cluster 0 (wrong, 3 members, middling scores), cluster 1 (correct, 2 members, high sum),
# cluster 2 (wrong, 1 member, the single best score), one candidate with no answer (best score of all).
POOL = [
    C(0, False, 0.50, [0.9, 0.4]),
    C(1, True, 0.80, [0.8, 0.8]),
    C(0, False, 0.40, [0.7, 0.7]),
    C(2, False, 0.95, [0.95, 0.1]),
    C(None, False, 0.99, [0.99, 0.99]),
    C(1, True, 0.85, [0.6, 0.9]),
    C(0, False, 0.30, [0.5, 0.5]),
]


def test_clusters_rank_by_size_then_first_seen():
    assert ranked_clusters(POOL) == [[0, 2, 6], [1, 5], [3]]
    assert top_k_indices(POOL, 1) == [0, 2, 6]
    assert top_k_indices(POOL, 2) == [0, 1, 2, 5, 6]
    tie = [C(5), C(7), C(7), C(5)]
    assert ranked_clusters(tie) == [[0, 3], [1, 2]]   # equal sizes: cluster 5 was seen first


def test_oracles_and_sample_average():
    assert sample_average(POOL).value == pytest.approx(2 / 7)
    assert oracle(POOL).value == 1.0
    assert majk_oracle(POOL, 1).value == 0.0     # the largest cluster is wrong
    assert majk_oracle(POOL, 2).value == 1.0
    for sel in (sample_average(POOL), oracle(POOL), majk_oracle(POOL, 2)):
        assert sel.scored == 0


def test_majority_picks_largest_cluster_without_scores():
    s = majority(POOL)
    assert (s.value, s.index, s.scored) == (0.0, 0, 0)


def test_rerank_all_ignores_candidates_without_answer():
    s = rerank_all(POOL)
    assert s.index == 3 and s.value == 0.0       # 0.99 has no answer; the best answered is cluster 2
    assert s.scored == 6 and s.cost(len(POOL)) == pytest.approx(6 / 7)


def test_orm_best_of_n_reads_the_orm_score_not_the_verifier():
    from dataclasses import replace

    orm = [0.1, 0.2, 0.3, 0.4, 0.99, 0.9, None]     # best answered ORM score: index 5 (cluster 1, correct)
    pool = [replace(c, orm_score=o) for c, o in zip(POOL, orm)]
    s = orm_best_of_n(pool)
    assert (s.index, s.value, s.scored) == (5, 1.0, 6)
    assert rerank_all(pool).index == 3                # the verifier still picks its own argmax


def test_rerank_top_k_scores_only_kept_clusters():
    s1, s2 = rerank_top_k(POOL, 1), rerank_top_k(POOL, 2)
    assert (s1.index, s1.value, s1.scored) == (0, 0.0, 3)
    assert (s2.index, s2.value, s2.scored) == (5, 1.0, 5)
    # K larger than the number of clusters: every cluster is kept, same as RR.All
    s9 = rerank_top_k(POOL, 9)
    assert (s9.index, s9.scored) == (rerank_all(POOL).index, 6)
    with pytest.raises(ValueError, match="K must be >= 1, got 0"):
        rerank_top_k(POOL, 0)


def test_weighted_rerank_sums_scores_per_answer():
    # sums: cluster 0 = 1.2, cluster 1 = 1.65, cluster 2 = 0.95
    s = weighted_rerank(POOL)
    assert (s.value, s.index, s.scored) == (1.0, 5, 6)   # the best member of the winning cluster
    assert weighted_rerank_top_k(POOL, 1).value == 0.0   # only cluster 0 left
    t = weighted_rerank_top_k(POOL, 2)
    assert (t.value, t.scored) == (1.0, 5)


def test_majority_of_top_n():
    # score order (answered): 3 (c2) .95, 5 (c1) .85, 1 (c1) .80, 0 (c0) .50, 2 (c0) .40, 6 (c0) .30
    assert majority_of_top_n(POOL, 1).index == 3
    # top 2: c2 and c1 once each: the tie goes to the cluster whose best member ranks first (c2)
    assert majority_of_top_n(POOL, 2).index == 3
    s3 = majority_of_top_n(POOL, 3)
    assert (s3.index, s3.value, s3.scored) == (5, 1.0, 6)
    assert majority_of_top_n(POOL, 100).value == 0.0     # all: cluster 0 (3 votes) wins


def test_prm_aggregations_and_best_of_n():
    assert aggregate_steps([0.9, 0.4], "min") == 0.4
    assert aggregate_steps([0.9, 0.4], "product") == pytest.approx(0.36)
    assert aggregate_steps([0.9, 0.4], "last") == 0.4
    assert aggregate_steps([], "min") is None and aggregate_steps(None, "last") is None
    with pytest.raises(ValueError, match="unknown PRM aggregation 'mean'"):
        aggregate_steps([0.5], "mean")
    # min: 0.4, 0.8, 0.7, 0.1, -, 0.6, 0.5 -> index 1; product: .36 .64 .49 .095 - .54 .25 -> 1
    # last: .4 .8 .7 .1 - .9 .5 -> index 5
    assert prm_best_of_n(POOL, "min").index == 1
    assert prm_best_of_n(POOL, "product").index == 1
    assert prm_best_of_n(POOL, "last").index == 5
    assert prm_best_of_n(POOL, "min").scored == 6


def test_prm_vote():
    # min sums: c0 = 0.4+0.7+0.5 = 1.6, c1 = 0.8+0.6 = 1.4, c2 = 0.1 -> cluster 0 (wrong)
    assert prm_vote(POOL, "min").value == 0.0
    # last sums: c0 = 0.4+0.7+0.5 = 1.6, c1 = 0.8+0.9 = 1.7 -> cluster 1, best member by last = 5
    s = prm_vote(POOL, "last")
    assert (s.value, s.index) == (1.0, 5)


def test_ties_go_to_the_earliest_candidate():
    pool = [C(0, False, 0.7, [0.5]), C(1, True, 0.7, [0.5]), C(1, True, 0.1, [0.1])]
    assert rerank_all(pool).index == 0
    assert prm_best_of_n(pool, "min").index == 0
    # equal weighted sums (0.5 vs 0.25 + 0.25): the first-seen cluster wins
    pool2 = [C(0, False, 0.5), C(1, True, 0.25), C(1, True, 0.25)]
    assert weighted_rerank(pool2).index == 0
    # equal cluster sizes: majority goes to the first-seen cluster
    assert majority([C(3, False), C(4, True), C(4, True), C(3, False)]).index == 0


def test_no_answer_extracted_selects_nothing():
    pool = [C(None, True, 0.9, [0.9]), C(None, False, 0.8, [0.8])]
    for name, sel in build_selectors(k=2, top_n=2).items():
        s = sel(pool)
        if name == "Pass@N (oracle)":
            assert s.value == 1.0     # the oracle reads the grades, not the answers
        elif name == "Pass@1 (sample avg)":
            assert s.value == 0.5
        else:
            assert s.value == 0.0 and s.index is None and s.scored == 0, name


def test_single_cluster_every_selector_agrees():
    pool = [C(0, True, 0.2, [0.3]), C(0, True, 0.9, [0.1]), C(None, False, 0.95, [0.99])]
    for name, sel in build_selectors(k=4, top_n=1).items():
        s = sel(pool)
        assert s.value == pytest.approx(2 / 3 if "sample" in name else 1.0), name
        if s.index is not None:
            assert pool[s.index].cluster == 0
    assert rerank_top_k(pool, 1).scored == 2 == rerank_all(pool).scored


def test_missing_scores_rank_last():
    pool = [C(0, False, None, None), C(1, True, 0.01, [0.01]), C(2, False, float("nan"), [])]
    assert rerank_all(pool).index == 1
    assert prm_best_of_n(pool, "min").index == 1
    assert weighted_rerank(pool).index == 1


def test_logprob_best_of_n_reads_the_mean_logprob_and_costs_no_score():
    from dataclasses import replace

    lp = [-0.5, -0.3, -0.2, -0.9, -0.01, None, -0.25]   # best answered: index 2 (cluster 0, wrong); index 4 has
    pool = [replace(c, mean_logprob=x) for c, x in zip(POOL, lp)]  # no answer, index 5 no log-prob
    s = logprob_best_of_n(pool)
    assert (s.index, s.value, s.scored) == (2, 0.0, 0)
    lp[1] = -0.1                                        # now the correct candidate 1 has the best log-prob
    s = logprob_best_of_n([replace(c, mean_logprob=x) for c, x in zip(POOL, lp)])
    assert (s.index, s.value) == (1, 1.0)


def test_empty_pool():
    for name, sel in build_selectors().items():
        s = sel([])
        assert s.value == 0.0 and s.scored == 0 and s.cost(0) == 0.0, name


def test_build_selectors_names():
    names = list(build_selectors(k=8, top_n=5, prm_vote_aggregation="last"))
    assert names == ["Pass@1 (sample avg)", "Pass@N (oracle)", "Maj1@N", "Maj8 (oracle)", "RR.All", "RR.Top-8",
                     "W.RR", "W.RR.Maj8", "Maj1.Top5", "PRM BoN (min)", "PRM BoN (product)",
                     "PRM BoN (last)", "PRM vote (last)"]
    assert list(build_selectors(use_verifier=False, use_prm=False)) == names[:4]
    assert list(build_selectors(use_verifier=False, use_prm=False, use_orm=True)) == names[:4] + ["ORM BoN"]
    assert list(build_selectors(use_verifier=False, use_prm=False, use_logprob=True)) == names[:4] + ["LogProb BoN"]
