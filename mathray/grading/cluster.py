"""Grouping equivalent answers (majority voting, solution-cluster re-ranking, Math-Shepherd labels).

Answers are first grouped by a canonical key (exact number value, folded text, else the normalized string),
then groups are merged when their representatives are equivalent (union-find over group pairs), so the
expensive check runs once per pair of distinct groups, not per pair of answers.
"""
from __future__ import annotations

from mathray.grading.equivalence import canonical_key, is_equivalent

NO_ANSWER = -1  # cluster id of a None answer: it joins no cluster and never wins a vote


def cluster_answers(answers: list[str | None], *, timeout: float | None = None) -> list[int]:
    """Cluster ids (0, 1, ... in order of first appearance) for ``answers``; None gets ``NO_ANSWER``."""
    keys: dict[str, int] = {}
    reps: list[str] = []
    group_of: list[int] = []
    for a in answers:
        if a is None or not str(a).strip():
            group_of.append(NO_ANSWER)
            continue
        k = canonical_key(str(a))
        if k not in keys:
            keys[k] = len(reps)
            reps.append(str(a))
        group_of.append(keys[k])
    parent = list(range(len(reps)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(reps)):
        for j in range(i):
            if find(i) != find(j) and is_equivalent(reps[i], reps[j], timeout=timeout):
                parent[find(i)] = find(j)
    ids: dict[int, int] = {}
    out = []
    for g in group_of:
        if g == NO_ANSWER:
            out.append(NO_ANSWER)
        else:
            out.append(ids.setdefault(find(g), len(ids)))
    return out
