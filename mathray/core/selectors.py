"""Every answer-selection strategy of the papers, applied to one problem's candidate pool (pure Python).

A pool is a list of ``Candidate`` (one sampled solution: its graded correctness, its answer's
equivalence-cluster id, the verifier score S_cls, the ORM score and the PRM step scores). A selector returns a
``Selection``: the value it earns on the problem (1/0; a fraction for the sample average), the chosen
candidate, and how many candidates needed a verifier/PRM score (evaluator cost = scored / pool size).

Selectors (Liu et al. 2023, Lightman et al. 2023, Math-Shepherd, Snell et al. 2024; docs/methods.md):

==================  ==========================================================================  =========
name                rule                                                                        scores
==================  ==========================================================================  =========
Pass@1 (sample)     fraction of correct candidates (= pass@1 estimate)                          none
Pass@N (oracle)     any candidate correct                                                       none
Maj1@N              a candidate of the largest answer cluster                                   none
MajK (oracle)       any of the K largest clusters holds a correct candidate                     none
RR.All              argmax S_cls over all candidates                                             all
RR.Top-K            keep the K largest clusters, argmax S_cls inside them (SCR)                 top-K
W.RR                the cluster with the largest sum of S_cls                                   all
W.RR.MajK           W.RR restricted to the K largest clusters                                   top-K
Maj1.TopN           majority cluster among the N best-scored candidates                         all
PRM BoN (agg)       argmax of the PRM solution score, agg = min | product | last step           all
PRM vote            the cluster with the largest sum of PRM solution scores                     all
ORM BoN             argmax of the ORM score (Lightman et al.'s outcome reward model)             all
LogProb BoN         argmax of the generator's mean token log-prob: the free re-ranker            none
==================  ==========================================================================  =========

Conventions (the papers leave them open; chosen to be deterministic and documented):

- A candidate without an extracted answer (``cluster is None``) is never selected, never votes and
  needs no score: it cannot be correct (Lightman's eval drops such samples before the argmax). A pool
  with no answer at all selects nothing and earns 0.
- Clusters are ranked by size; equal sizes are ordered by the first position at which a member occurs
  in the pool (first seen wins). Under the random-subset protocol the pool order is a fresh shuffle per
  trial, so this equals a seeded random tie-break there. With K larger than the number of clusters all
  clusters are kept.
- Argmax over scores: ties go to the earliest candidate in the pool. A missing score (None, e.g. the
  scorer quarantined the sample, or a solution with no step) ranks below every real score.
- An answer-level choice (Maj1, W.RR, votes) is represented by the cluster's best-scored member (the
  earliest member for Maj1); its correctness is that candidate's grade (the grader is not transitive,
  so cluster members may in rare cases disagree).
- Weighted votes: equal sums go to the cluster seen first. Maj1.TopN: equal counts among the top N go
  to the cluster whose best member ranks highest.
- ORM BoN reads ``orm_score`` (SCORES column of an ORM checkpoint: the PRM format, one tag after the whole
  solution); it is listed only when some candidate has an ORM score. RR.All is the verifier's argmax.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Callable, Sequence

AGGREGATIONS = ("min", "product", "last")


@dataclass(frozen=True)
class Candidate:
    is_correct: bool
    cluster: int | None = None                   # answer-equivalence cluster; None: no answer extracted
    verifier_score: float | None = None          # S_cls in [0, 1]
    orm_score: float | None = None               # ORM p(+) in [0, 1]
    step_scores: tuple[float, ...] | None = None  # PRM p(good) per step
    # the generator's mean token log-probability of the sample: the free baseline every trained evaluator must
    # beat (LogProb BoN, and a row of the evaluator table)
    mean_logprob: float | None = None


@dataclass(frozen=True)
class Selection:
    value: float            # what the selector earns on this problem (1/0, or a fraction)
    index: int | None       # the chosen candidate (None: no choice)
    scored: int             # candidates that needed a verifier/PRM score

    def cost(self, pool_size: int) -> float:
        return self.scored / pool_size if pool_size else 0.0


Pool = Sequence[Candidate]
Selector = Callable[[Pool], Selection]
NONE = Selection(0.0, None, 0)


def _pick(pool: Pool, index: int | None, scored: int) -> Selection:
    if index is None:
        return Selection(0.0, None, scored)
    return Selection(1.0 if pool[index].is_correct else 0.0, index, scored)


def _rank_key(score: float | None) -> float:
    return -math.inf if score is None or math.isnan(score) else score


def answered(pool: Pool) -> list[int]:
    return [i for i, c in enumerate(pool) if c.cluster is not None]


def ranked_clusters(pool: Pool) -> list[list[int]]:
    """Clusters as lists of candidate indices, largest first; equal sizes by first occurrence."""
    members: dict[int, list[int]] = {}
    for i in answered(pool):
        members.setdefault(pool[i].cluster, []).append(i)
    return sorted(members.values(), key=lambda m: (-len(m), m[0]))


def top_k_indices(pool: Pool, k: int) -> list[int]:
    """Candidates of the K largest clusters, in pool order."""
    if k < 1:
        raise ValueError(f"K must be >= 1, got {k}")
    return sorted(i for m in ranked_clusters(pool)[:k] for i in m)


def argmax(pool: Pool, indices: Sequence[int], score: Callable[[Candidate], float | None]) -> int | None:
    """The index with the highest score; ties go to the earliest index; None for no indices."""
    best, best_key = None, -math.inf
    for i in sorted(indices):
        key = _rank_key(score(pool[i]))
        if best is None or key > best_key:
            best, best_key = i, key
    return best


def aggregate_steps(step_scores: Sequence[float] | None, how: str) -> float | None:
    """PRM solution score from step scores: min (Math-Shepherd), product (Lightman), last (Snell)."""
    if how not in AGGREGATIONS:
        raise ValueError(f"unknown PRM aggregation {how!r}; expected one of {AGGREGATIONS}")
    if not step_scores:
        return None
    if how == "min":
        return min(step_scores)
    if how == "last":
        return step_scores[-1]
    return math.prod(step_scores)


def _verifier(c: Candidate) -> float | None:
    return c.verifier_score


def _prm(how: str) -> Callable[[Candidate], float | None]:
    return lambda c: aggregate_steps(c.step_scores, how)


def _weighted_vote(pool: Pool, indices: Sequence[int], score: Callable[[Candidate], float | None]) -> int | None:
    """The best-scored member of the cluster with the largest score sum (missing scores add 0)."""
    sums: dict[int, float] = {}
    for i in sorted(indices):   # dict order = first occurrence, which breaks equal sums
        s = score(pool[i])
        sums[pool[i].cluster] = sums.get(pool[i].cluster, 0.0) + (0.0 if s is None or math.isnan(s) else s)
    if not sums:
        return None
    winner = max(sums, key=lambda c: sums[c])   # max keeps the first of equal values
    return argmax(pool, [i for i in indices if pool[i].cluster == winner], score)


# ---- selectors (pool -> Selection) -------------------------------------------------------------------

def sample_average(pool: Pool) -> Selection:
    return Selection(sum(c.is_correct for c in pool) / len(pool), None, 0) if pool else NONE


def oracle(pool: Pool) -> Selection:
    return Selection(1.0 if any(c.is_correct for c in pool) else 0.0, None, 0)


def majority(pool: Pool) -> Selection:
    clusters = ranked_clusters(pool)
    return _pick(pool, clusters[0][0] if clusters else None, 0)


def majk_oracle(pool: Pool, k: int) -> Selection:
    return Selection(1.0 if any(pool[i].is_correct for i in top_k_indices(pool, k)) else 0.0, None, 0)


def rerank_all(pool: Pool) -> Selection:
    idx = answered(pool)
    return _pick(pool, argmax(pool, idx, _verifier), len(idx))


def rerank_top_k(pool: Pool, k: int) -> Selection:
    idx = top_k_indices(pool, k)
    return _pick(pool, argmax(pool, idx, _verifier), len(idx))


def weighted_rerank(pool: Pool) -> Selection:
    idx = answered(pool)
    return _pick(pool, _weighted_vote(pool, idx, _verifier), len(idx))


def weighted_rerank_top_k(pool: Pool, k: int) -> Selection:
    idx = top_k_indices(pool, k)
    return _pick(pool, _weighted_vote(pool, idx, _verifier), len(idx))


def majority_of_top_n(pool: Pool, n: int) -> Selection:
    """Majority vote among the N best-scored candidates (all candidates are scored to rank them)."""
    if n < 1:
        raise ValueError(f"N must be >= 1, got {n}")
    idx = answered(pool)
    by_score = sorted(idx, key=lambda i: (-_rank_key(pool[i].verifier_score), i))[:n]
    counts: dict[int, int] = {}
    for i in by_score:    # dict order = score rank of each cluster's best member, which breaks ties
        counts[pool[i].cluster] = counts.get(pool[i].cluster, 0) + 1
    if not counts:
        return Selection(0.0, None, len(idx))
    winner = max(counts, key=lambda c: counts[c])
    return _pick(pool, next(i for i in by_score if pool[i].cluster == winner), len(idx))


def prm_best_of_n(pool: Pool, how: str) -> Selection:
    idx = answered(pool)
    return _pick(pool, argmax(pool, idx, _prm(how)), len(idx))


def prm_vote(pool: Pool, how: str) -> Selection:
    idx = answered(pool)
    return _pick(pool, _weighted_vote(pool, idx, _prm(how)), len(idx))


def _orm(c: Candidate) -> float | None:
    return c.orm_score


def orm_best_of_n(pool: Pool) -> Selection:
    idx = answered(pool)
    return _pick(pool, argmax(pool, idx, _orm), len(idx))


def _mean_logprob(c: Candidate) -> float | None:
    return c.mean_logprob


def logprob_best_of_n(pool: Pool) -> Selection:
    """Best-of-N by the generator's own mean token log-prob: costs no evaluator call (scored = 0)."""
    idx = answered(pool)
    return _pick(pool, argmax(pool, idx, _mean_logprob), 0)


def build_selectors(k: int = 8, top_n: int = 5, prm_vote_aggregation: str = "min",
                    use_verifier: bool = True, use_prm: bool = True, use_orm: bool = False,
                    use_logprob: bool = False) -> dict[str, Selector]:
    """Every selector by report name, parameters bound. Greedy Pass@1 is not a pool selector (it is one
    separate decode per problem) and is added by the evaluation job."""
    out: dict[str, Selector] = {
        "Pass@1 (sample avg)": sample_average,
        "Pass@N (oracle)": oracle,
        "Maj1@N": majority,
        f"Maj{k} (oracle)": partial(majk_oracle, k=k),
    }
    if use_logprob:
        out["LogProb BoN"] = logprob_best_of_n
    if use_verifier:
        out.update({
            "RR.All": rerank_all,
            f"RR.Top-{k}": partial(rerank_top_k, k=k),
            "W.RR": weighted_rerank,
            f"W.RR.Maj{k}": partial(weighted_rerank_top_k, k=k),
            f"Maj1.Top{top_n}": partial(majority_of_top_n, n=top_n),
        })
    if use_orm:
        out["ORM BoN"] = orm_best_of_n
    if use_prm:
        out.update({f"PRM BoN ({how})": partial(prm_best_of_n, how=how) for how in AGGREGATIONS})
        out[f"PRM vote ({prm_vote_aggregation})"] = partial(prm_vote, how=prm_vote_aggregation)
    return out


def subset(pool: Pool, indices: Sequence[int]) -> list[Candidate]:
    return [pool[i] for i in indices]
