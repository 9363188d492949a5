"""Search logic of Math-Shepherd labelling against deterministic stand-in completers (pure logic)."""
import itertools
import math

import pytest

from helpers.rounds import max_first_error_evaluations, run_rounds
from mathray.core.shepherd import (FirstErrorSearch, FullSearch, PrefixRollouts, SearchQueue,
                                   expected_good_prefix_rollouts, is_monotone, make_search, probe_offset,
                                   shepherd_text)
from mathray.jobs.ingest import load_math_shepherd

K = 4
GOOD = expected_good_prefix_rollouts(K)   # a good prefix stopped at its first correct completion: ~2 rollouts


def monotone_oracle(first_error: int):
    """Correct completions from prefix i: K before the first error, 0 from it on."""
    return lambda i: K if i < first_error else 0


def run_one(search, oracle):
    calls = []

    def evaluate(requests):
        calls.append(list(requests))
        return [oracle(step) for _, step in requests]

    stats = run_rounds([search], evaluate)
    return search.labels(), stats, calls


@pytest.mark.parametrize("n", list(range(1, 41)))
def test_first_error_found_exactly_within_bound(n):
    for f in range(n + 1):  # f == n: no error
        for final in (None, f == n):  # unknown final grade, or the solution's own grade
            labels, stats, _ = run_one(FirstErrorSearch(n, K, final), monotone_oracle(f))
            assert labels.first_error == (f if f < n else None)
            assert labels.hard == [int(i < f) for i in range(n)]
            assert labels.evaluations == stats.evaluations == stats.rounds
            assert labels.evaluations <= max_first_error_evaluations(n) == math.ceil(math.log2(n)) + 1
            assert labels.evaluations <= math.ceil(math.log2(n + 1))
            measured = [i for i, r in enumerate(labels.rollouts) if r]
            assert all(labels.soft[i] == (1.0 if i < f else 0.0) for i in measured)
            assert all(labels.soft[i] is None for i in range(n - 1) if i not in measured)


def test_correct_final_answer_costs_nothing_in_first_error_mode():
    labels, stats, calls = run_one(FirstErrorSearch(7, K, final_grade=True), monotone_oracle(0))
    assert calls == [] and stats.rounds == 0
    assert labels.hard == [1] * 7 and labels.rollouts == [0] * 7 and labels.first_error is None
    assert labels.soft == [None] * 6 + [1.0]


def test_wrong_final_answer_is_a_known_bad_last_step():
    labels, _, calls = run_one(FirstErrorSearch(4, K, final_grade=False), monotone_oracle(4))
    assert labels.first_error == 3 and labels.hard == [1, 1, 1, 0]
    assert all(step != 3 for call in calls for _, step in call)
    assert labels.evaluations == 2 == math.ceil(math.log2(4))


def test_full_mode_one_round_all_prefixes_and_free_last_step():
    labels, stats, calls = run_one(FullSearch(5, K, final_grade=True), lambda i: [4, 2, 0, 1, 9][i])
    assert stats.rounds == 1 and calls == [[(0, 0), (0, 1), (0, 2), (0, 3)]]
    assert labels.hard == [1, 1, 0, 1, 1]             # raw measurements: non-monotone is kept
    assert labels.soft == [1.0, 0.5, 0.0, 0.25, 1.0]
    assert labels.rollouts == [K, K, K, K, 0]
    assert labels.first_error == 2 and not is_monotone(labels.hard)
    labels, _, calls = run_one(FullSearch(3, K, final_grade=None), lambda i: 1)
    assert calls == [[(0, 0), (0, 1), (0, 2)]] and labels.rollouts == [K] * 3 and labels.first_error is None


def test_full_and_first_error_agree_on_monotone_oracles():
    for n, f in itertools.product(range(1, 9), range(0, 9)):
        if f > n:
            continue
        full, _, _ = run_one(FullSearch(n, K), monotone_oracle(f))
        fe, _, _ = run_one(FirstErrorSearch(n, K), monotone_oracle(f))
        assert full.hard == fe.hard and full.first_error == fe.first_error
        assert fe.evaluations <= full.evaluations


@pytest.mark.parametrize("good_cost", [None, GOOD])
@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13])
def test_non_monotone_oracles_give_a_consistent_boundary(n, good_cost):
    """Every good/bad pattern: no crash, bound kept, and the boundary agrees with what was measured."""
    for pattern in itertools.product([0, 1], repeat=n):
        labels, _, _ = run_one(FirstErrorSearch(n, K, good_cost=good_cost), lambda i: K * pattern[i])
        f = labels.first_error if labels.first_error is not None else n
        assert labels.evaluations <= (max_first_error_evaluations(n) if good_cost is None else n)
        assert is_monotone(labels.hard) and labels.hard == [int(i < f) for i in range(n)]
        for i, r in enumerate(labels.rollouts):
            if r:  # every measurement agrees with the labels
                assert labels.hard[i] == pattern[i]
        if is_monotone(list(pattern)):
            assert f == next((i for i, p in enumerate(pattern) if p == 0), n)


def _probe_costs(search: FirstErrorSearch, first_error: int, good: float, bad: float) -> float:
    """Rollouts the search spends to find ``first_error`` when a good probe costs ``good`` and a bad one
    ``bad`` (a monotone oracle)."""
    spent = 0.0
    while not search.done:
        (step,) = search.next_steps()
        ok = step < first_error
        spent += good if ok else bad
        search.record(step, K if ok else 0)
    assert search.labels().first_error == (first_error if first_error < search.n else None)
    return spent


def _least_expected_cost(size: int, good: float, bad: float) -> float:
    """The best any probing order can do over ``size`` equally likely first errors, by trying every
    decision tree (exponential; small sizes only): written apart from the search's own programme."""
    def trees(lo, hi):   # per tree: the summed cost over f in lo..hi
        if lo == hi:
            yield 0.0
            return
        for m in range(lo, hi):
            for left in trees(lo, m):
                for right in trees(m + 1, hi):
                    yield (m - lo + 1) * bad + left + (hi - m) * good + right
    return min(trees(0, size - 1)) / size


def test_weighted_first_error_search_spends_the_fewest_expected_rollouts():
    """A good prefix stopped at its first correct completion costs ~2 rollouts, a bad one K: the weighted
    search's expected cost (every first error equally likely) is the least any probing order achieves,
    below bisection's from 3 candidates on; with equal costs it is bisection, probe for probe."""
    assert GOOD == pytest.approx(2 - 2 ** (1 - K)) and expected_good_prefix_rollouts(1) == 1.0
    for n in range(1, 41):   # n steps, last step known bad: first error in 0..n-1, n candidates
        weighted = sum(_probe_costs(FirstErrorSearch(n, K, False, good_cost=GOOD), f, GOOD, K)
                       for f in range(n)) / n
        bisect = sum(_probe_costs(FirstErrorSearch(n, K, False), f, GOOD, K) for f in range(n)) / n
        assert weighted <= bisect + 1e-9 and (n < 3 or weighted < bisect)
        if n <= 8:
            assert weighted == pytest.approx(_least_expected_cost(n, GOOD, K))
        for f in range(n):   # equal costs: the previous search's probes, (lo + hi) // 2, one by one
            lo, hi, probes = 0, n - 1, []
            while lo < hi:
                probes.append((lo + hi) // 2)
                lo, hi = (probes[-1] + 1, hi) if f > probes[-1] else (lo, probes[-1])
            calls = run_one(FirstErrorSearch(n, K, False), monotone_oracle(f))[2]
            assert [step for ((_, step),) in calls] == probes
    good8 = expected_good_prefix_rollouts(8)   # K=8: about a fifth of the way into the candidates
    assert [probe_offset(s, good8, 8) for s in (2, 5, 7, 10, 14, 20)] == [0, 0, 1, 2, 3, 4]
    # the weighted search without stopping (every prefix costs K) probes exactly as bisection does
    for n, f in itertools.product(range(1, 12), range(0, 12)):
        if f <= n:
            a, b = make_search("first-error", n, K, None, stop_at_correct=False), FirstErrorSearch(n, K)
            assert run_one(a, monotone_oracle(f))[2] == run_one(b, monotone_oracle(f))[2]
    with pytest.raises(ValueError, match="unknown first-error search"):
        make_search("first-error", 3, K, search="linear")


@pytest.mark.parametrize("n", list(range(1, 41)))
def test_weighted_first_error_search_finds_the_first_error_exactly(n):
    for f in range(n + 1):
        for final in (None, f == n, False if f < n else None):
            search = make_search("first-error", n, K, final, stop_at_correct=True)
            labels, stats, _ = run_one(search, monotone_oracle(f))
            assert labels.first_error == (f if f < n else None)
            assert labels.hard == [int(i < f) for i in range(n)]
            assert labels.evaluations == stats.rounds <= n


def test_run_rounds_batches_many_solutions_per_call():
    searches = [FirstErrorSearch(8, K) for _ in range(5)] + [FullSearch(3, K, final_grade=False)]
    firsts = [0, 3, 8, 5, 7]
    sizes = []

    def evaluate(requests):
        sizes.append(len(requests))
        return [K if j == 5 else monotone_oracle(firsts[j])(step) for j, step in requests]

    stats = run_rounds(searches, evaluate)
    assert stats.rounds == max(s.labels().evaluations for s in searches) <= 4
    assert sizes[0] == 5 + 2                               # every solution's first prefix in call one
    assert [s.labels().first_error for s in searches] == [0, 3, None, 5, 7, 2]


@pytest.mark.parametrize("seed", range(5))
def test_search_queue_in_any_completion_order_gives_the_rounds_labels(seed):
    """Results returned out of order, a few requests in flight at a time (an engine loop): each search
    advances on its own results and ends with the labels the synchronous rounds give."""
    import random

    rng = random.Random(seed)
    patterns = [[rng.choice([K, 1, 0]) for _ in range(rng.randint(1, 9))] for _ in range(12)]
    finals = [rng.choice([None, True, False]) for _ in patterns]

    def searches():
        return [make_search(mode, len(p), K, f) for mode in ("first-error", "full") for p, f in zip(patterns, finals)]

    def oracle(j, step):
        return patterns[j % len(patterns)][step]

    reference = searches()
    run_rounds(reference, lambda reqs: [oracle(j, step) for j, step in reqs])
    queue = SearchQueue(searches())
    in_flight = []
    while len(queue) or in_flight:
        while len(queue) and len(in_flight) < 3:
            in_flight.append(queue.pop())
        j, step = in_flight.pop(rng.randrange(len(in_flight)))
        queue.record(j, step, oracle(j, step))
    queue.check_done()
    assert [s.labels() for s in queue.searches] == [s.labels() for s in reference]
    assert queue.evaluations == sum(s.labels().evaluations for s in reference)
    stuck = SearchQueue([FullSearch(2, K)])
    stuck.pop()
    with pytest.raises(RuntimeError, match="stopped asking"):
        stuck.check_done()


@pytest.mark.parametrize("seed", range(20))
def test_prefix_stopped_at_its_first_correct_completion_whatever_order_they_return(seed):
    """A prefix's completions come back in any order; with stop_at_correct it is decided once its lowest
    correct completion c and every one below it are back, and counts 0..c, so the outcome is the same in
    every order. The hard label is always that of all K."""
    import random

    rng = random.Random(seed)
    correct = [rng.random() < 0.3 for _ in range(K)]
    order = list(range(K))
    rng.shuffle(order)
    first = next((c for c in range(K) if correct[c]), None)
    for stop in (True, False):
        p = PrefixRollouts(K, stop)
        outcome = None
        for c in order:
            assert p.counted() is None
            p.add(c, correct[c])
            if p.counted() is not None:
                outcome = p.outcome()
                break
        if stop and first is not None:
            assert outcome == (1, first + 1)
            assert all(c in p.correct for c in range(first + 1))
        else:   # all K back: every completion counted
            assert outcome == (sum(correct), K) and len(p.correct) == K
        assert (outcome[0] > 0) == any(correct)


def test_a_prefix_stopped_early_has_its_rollouts_and_no_soft_label():
    s = FirstErrorSearch(5, K, final_grade=False)    # last step known bad; first error in 0..4
    (step,) = s.next_steps()
    s.record(step, 1, rollouts=2)                    # stopped at completion 1
    (nxt,) = s.next_steps()
    s.record(nxt, 0)                                 # all K wrong
    while not s.done:
        (i,) = s.next_steps()
        s.record(i, K)
    lab = s.labels()
    assert lab.rollouts[step] == 2 and lab.soft[step] is None and lab.hard[step] == 1
    assert lab.rollouts[nxt] == K and lab.soft[nxt] == 0.0 and lab.hard[nxt] == 0
    with pytest.raises(ValueError, match="needs a correct one"):
        _ask_and_record(0, 2)
    with pytest.raises(ValueError, match="rollouts=5 outside"):
        _ask_and_record(1, K + 1)
    with pytest.raises(ValueError, match="came back twice"):
        p = PrefixRollouts(K, True)
        p.add(0, False)
        p.add(0, True)
    with pytest.raises(RuntimeError, match="still out"):
        PrefixRollouts(K, True).outcome()


def _ask_and_record(n_correct: int, rollouts: int) -> None:
    s = FirstErrorSearch(3, K)
    (step,) = s.next_steps()
    s.record(step, n_correct, rollouts)


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="at least one step"):
        FirstErrorSearch(0, K)
    with pytest.raises(ValueError, match="unknown labelling mode"):
        make_search("exhaustive", 3, K)
    s = FirstErrorSearch(4, K)
    (step,) = s.next_steps()
    with pytest.raises(ValueError, match="not requested"):
        s.record(step + 1, 0)
    with pytest.raises(ValueError, match="outside"):
        s.record(step, K + 1)
    with pytest.raises(RuntimeError, match="before the search finished"):
        s.labels()
    with pytest.raises(RuntimeError, match="results for"):
        run_rounds([FullSearch(2, K)], lambda reqs: [])


def test_shepherd_text_round_trips_through_ingest():
    steps = ["5 * 3 = 15", "7 + 15 = 22", "22 - 4 = 18", "The answer is \\boxed{18}."]
    rec = shepherd_text("Compute 7 + 5 * 3 - 4.", steps, [1, 1, 0, 0])
    assert rec["input"].count("ки") == 4 and "Step 2: 7 + 15 = 22 ки\n" in rec["input"]
    assert rec["label"].endswith("Step 4: The answer is \\boxed{18}. -")
    loaded = load_math_shepherd(rec, 0, "t").step_labels
    assert loaded["problem"] == "Compute 7 + 5 * 3 - 4."
    assert loaded["hard_labels"] == [1, 1, 0, 0]
    assert loaded["steps"] == [f"Step {i + 1}: {s}" for i, s in enumerate(steps)]
    with pytest.raises(ValueError, match="labels"):
        shepherd_text("p", ["a"], [1, 0])
