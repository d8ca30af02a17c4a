"""The Hungarian matcher against brute force on every small shape the tracker meets."""

import itertools

import numpy as np
import pytest

from edge_fer.tracking.assignment import linear_assignment


def brute_force_cost(cost: np.ndarray) -> float:
    n, m = cost.shape
    if n <= m:
        return min(sum(cost[i, cols[i]] for i in range(n)) for cols in itertools.permutations(range(m), n))
    return brute_force_cost(cost.T)


@pytest.mark.parametrize("shape", [(1, 1), (1, 4), (4, 1), (2, 3), (3, 2), (4, 4), (5, 3), (3, 6)])
def test_matches_brute_force_optimum(shape):
    rng = np.random.default_rng(sum(shape) * 7919)
    for _ in range(40):
        cost = rng.random(shape)
        if rng.random() < 0.5:  # ties and forbidden pairs, as the tracker produces them
            cost = np.round(cost * 3) / 3
            cost[rng.random(shape) < 0.3] = 1e6
        pairs = linear_assignment(cost)
        rows, cols = zip(*pairs)
        assert len(pairs) == min(shape)
        assert len(set(rows)) == len(rows) and len(set(cols)) == len(cols)
        assert sum(cost[r, c] for r, c in pairs) == pytest.approx(brute_force_cost(cost))


def test_prefers_the_global_optimum_over_the_greedy_choice():
    # greedy takes (0, 0) at cost 0.1 and must then pay 10 for (1, 1); the optimum pays 0.2 + 0.3
    cost = np.array([[0.1, 0.2], [0.3, 10.0]])
    assert linear_assignment(cost) == [(0, 1), (1, 0)]


def test_empty_matrices_give_no_pairs():
    assert linear_assignment(np.zeros((0, 3))) == []
    assert linear_assignment(np.zeros((2, 0))) == []
