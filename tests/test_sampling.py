import numpy as np
import pytest

from vidclf.sampling import random_segment_indices, uniform_indices, window_starts


@pytest.mark.parametrize(
    "length, n, expected",
    [
        (100, 4, [12, 37, 62, 87]),
        (20, 20, list(range(20))),
        (40, 20, [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31, 33, 35, 37, 39]),
        (164, 5, [16, 49, 82, 114, 147]),
        (3, 5, [0, 0, 1, 2, 2]),  # shorter than asked: frames repeat, in order
        (1, 4, [0, 0, 0, 0]),
        (7, 1, [3]),
    ],
)
def test_uniform_indices_exact(length, n, expected):
    assert uniform_indices(length, n) == expected


def test_uniform_indices_in_range_and_sorted():
    for length in range(1, 200, 7):
        for n in (1, 8, 20, 33):
            idx = uniform_indices(length, n)
            assert len(idx) == n
            assert idx == sorted(idx)
            assert 0 <= idx[0] and idx[-1] < length


def test_uniform_indices_rejects_nonsense():
    with pytest.raises(ValueError):
        uniform_indices(0, 4)
    with pytest.raises(ValueError):
        uniform_indices(10, 0)


def test_random_segment_indices_one_per_segment():
    rng = np.random.default_rng(0)
    for _ in range(50):
        idx = random_segment_indices(100, 4, rng)
        for i, v in enumerate(idx):
            assert 25 * i <= v < 25 * (i + 1)
    assert random_segment_indices(3, 5, rng) == [0, 0, 1, 2, 2]
    # different draws across calls: temporal jitter
    assert len({tuple(random_segment_indices(100, 4, rng)) for _ in range(20)}) > 1


def test_window_starts():
    assert window_starts(10, 4, 3) == [0, 3, 6]
    assert window_starts(11, 4, 3) == [0, 3, 6, 7]
    assert window_starts(3, 4, 2) == [0]


def test_paired_indices_exact():
    from vidclf.sampling import paired, paired_indices

    assert paired_indices([12, 37, 62, 87], 2, 100) == [12, 14, 37, 39, 62, 64, 87, 89]
    assert paired_indices([0, 1, 2], 2, 3) == [0, 2, 1, 2, 2, 2]  # partners clamp to the last frame
    assert paired(uniform_indices, 3)(100, 4) == [12, 15, 37, 40, 62, 65, 87, 90]
    assert paired(uniform_indices, 0) is uniform_indices  # gap 0: plain frames
