"""The scorer's arithmetic, vectorised and exact: IoU in the scorer's precisions, the human assignment as
SciPy makes it, and sums added in the scorer's order.

Nothing here knows the files: inputs are arrays, outputs are arrays.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from itertools import compress

import numpy as np

from tpslab.challenge import segments, starts_of

# Two costs closer than this are treated as a possible tie and left to SciPy (costs lie in [0, 2];
# SciPy's own rounding is around 1e-15).
TIE_TOL = 1e-9


# ----------------------------------------------------------------------------------------------------
# IoU


def iou32(a: np.ndarray, b: np.ndarray):
    """Row-wise IoU of float32 boxes, every step in float32 (as the scorer's NumPy scalars); -1 if disjoint.

    Returns ``(iou, zero_union)``: the IoUs and which overlapping pairs have a union of 0."""
    one = np.float32(1)
    w = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]) + one
    h = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]) + one
    inter = w * h
    union = (a[:, 2] - a[:, 0] + one) * (a[:, 3] - a[:, 1] + one) + \
        (b[:, 2] - b[:, 0] + one) * (b[:, 3] - b[:, 1] + one) - inter
    overlap = (w > 0) & (h > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(overlap, inter / union, np.float32(-1))
    return iou.astype(np.float32), overlap & (union == 0)


def iou64(a: np.ndarray, b: np.ndarray):
    """Row-wise IoU in float64, the additions in the scorer's order; -1 if disjoint (and ``zero_union``)."""
    w = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]) + 1
    h = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]) + 1
    inter = w * h
    union = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1) + (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1) \
        - inter
    overlap = (w > 0) & (h > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(overlap, inter / union, -1.0)
    return iou, overlap & (union == 0)


# ----------------------------------------------------------------------------------------------------
# Ordered sums


class OrderedSums:
    """Per group of consecutive values (group sizes ``counts``, fixed), the sum added strictly left to right.

    The groups are laid out in a zero-padded (groups x largest group) matrix whose columns are added one by
    one, which performs exactly the additions ``((0 + v0) + v1) + ...`` of a Python loop (adding 0.0 is
    exact). The layout is made once, for sums of many value arrays over the same groups."""

    def __init__(self, counts):
        counts = np.asarray(counts, dtype=np.int64)
        self.n = len(counts)
        self.group, self.col = segments(counts)
        self.width = int(counts.max()) if len(counts) else 0

    def __call__(self, values: np.ndarray) -> np.ndarray:
        out = np.zeros(self.n, dtype=np.float64)
        if len(values) == 0:
            return out
        padded = np.zeros((self.n, self.width), dtype=np.float64)
        padded[self.group, self.col] = values
        for j in range(self.width):
            out += padded[:, j]
        return out


def group_sum(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per group of consecutive ``values`` (sizes ``counts``), the sum added strictly left to right
    (:class:`OrderedSums`)."""
    return OrderedSums(counts)(values)


# ----------------------------------------------------------------------------------------------------
# The human assignment
#
# The scorer calls scipy.optimize.linear_sum_assignment on 1 - IoU per frame. Most frames have one
# optimum by a wide margin, and then any exact method finds SciPy's pairs: the greedy check handles the
# frames where every GT human (or every prediction) has its own strictly best partner, the groups of
# overlapping boxes the rest, and only frames with real ties go to SciPy itself.


def _cost(iou: np.ndarray) -> np.ndarray:
    """The scorer's cost matrix (stack) in float64: a square matrix stays float32 (``1 - iou`` rounded in
    float32), a non-square one is padded with float64 zeros, so its cost is ``1 - iou`` in float64."""
    g, p = iou.shape[-2:]
    if g == p:
        return (np.float32(1) - iou).astype(np.float64)
    return 1.0 - iou.astype(np.float64)


def _greedy_side(cost: np.ndarray, disjoint: np.ndarray, axis: int):
    """Rows (axis 2) or columns (axis 1) that each have a strictly best partner, all distinct.

    Returns ``(ok, best, strict)`` per frame: whether the greedy choice is the unique optimum, each
    row's (column's) best partner and whether that best is strict."""
    k = cost.shape[0]
    order = np.sort(cost, axis=axis)
    best = np.argmin(cost, axis=axis)
    first, second = np.take(order, 0, axis=axis), np.take(order, 1, axis=axis) if order.shape[axis] > 1 else None
    gap = second - first if second is not None else np.full(best.shape, np.inf)
    strict = gap > TIE_TOL
    idle = disjoint.all(axis=axis)  # all pairs disjoint: costs the same wherever it goes
    hits = np.zeros((k, cost.shape[axis]), dtype=np.int64)  # partners taken per column (row)
    np.add.at(hits, (np.repeat(np.arange(k), best.shape[1])[strict.ravel()], best.ravel()[strict.ravel()]), 1)
    ok = (strict | idle).all(axis=1) & (hits.max(axis=1) <= 1)
    return ok, best, strict


def assign_shape(iou: np.ndarray):
    """Assignment of a stack of same-shape frames ``iou`` (k, g, p), as the scorer's SciPy call gives it.

    Returns ``(rows, frames_left)``: for each frame, (k, g) the assigned prediction per GT human (-1:
    none or a disjoint one) where the optimum is provably unique, and the indices of the frames not
    decided here. Unique means: every real row (g <= p) or column (g >= p) has a strict minimum cost
    with distinct argmins, except rows/columns made only of disjoint pairs (IoU -1), which cost the
    same wherever they go and never pass a threshold in [0, 1].
    """
    k, g, p = iou.shape
    cost = _cost(iou)
    disjoint = iou == np.float32(-1)
    assigned = np.full((k, g), -1, dtype=np.int64)
    ok = np.zeros(k, dtype=bool)
    if g <= p:
        ok, best, strict = _greedy_side(cost, disjoint, axis=2)
        assigned = np.where(strict, best, -1)
    if g >= p:
        col_ok, best, strict = _greedy_side(cost, disjoint, axis=1)  # best: the GT row taking each prediction
        by_col = np.full((k, g), -1, dtype=np.int64)
        fi, cj = np.nonzero(strict)
        by_col[fi, best[fi, cj]] = cj
        use_cols = col_ok & ~ok
        assigned[use_cols] = by_col[use_cols]
        ok = ok | col_ok
    return assigned, np.nonzero(~ok)[0]


def _groups(overlap: np.ndarray) -> list:
    """Connected groups of GT rows and predicted columns linked by overlapping boxes, as (rows, cols)."""
    row_links = [list(compress(range(len(r)), r)) for r in overlap.tolist()]
    col_links = [list(compress(range(len(c)), c)) for c in overlap.T.tolist()]
    seen, out = set(), []
    for r0, links in enumerate(row_links):
        if r0 in seen or not links:
            continue
        rows, cols, todo = {r0}, set(), [r0]
        while todo:
            for c in row_links[todo.pop()]:
                if c not in cols:
                    cols.add(c)
                    new = [r for r in col_links[c] if r not in rows]
                    rows.update(new)
                    todo += new
        seen |= rows
        out.append((sorted(rows), sorted(cols)))
    return out


@lru_cache(maxsize=None)
def _masks_without(c: int) -> tuple:
    """Per column j of c, the subsets of the c columns (bit masks) that do not hold j."""
    masks = np.arange(1 << c)
    return tuple(masks[(masks >> j) & 1 == 0] for j in range(c))


def _matching_tables(weight: np.ndarray) -> list:
    """Dynamic programme over subsets of columns for a stack of groups (k, r, c): table i (k, 2^c) holds
    the best total of a matching of rows 0..i-1 into each subset of the columns (-inf: impossible)."""
    k, r, c = weight.shape
    table = np.full((k, 1 << c), -np.inf)
    table[:, 0] = 0.0
    tables = [table]
    for i in range(r):
        new = table.copy()  # row i left out
        for j, src in enumerate(_masks_without(c)):
            dst = src | (1 << j)
            new[:, dst] = np.maximum(new[:, dst], table[:, src] + weight[:, i, j, None])
        tables.append(table := new)
    return tables


def _best_pairs(weight: np.ndarray, tables: list) -> np.ndarray:
    """The column of each row (k, r) in one maximum-weight matching (-1: none), traced back."""
    k, r, c = weight.shape
    mask = np.argmax(tables[-1], axis=1)
    cols = np.full((k, r), -1, dtype=np.int64)
    for i in range(r - 1, -1, -1):
        here, before = tables[i + 1][np.arange(k), mask], tables[i]
        taken = here != before[np.arange(k), mask]
        for j in range(c):
            bit = 1 << j
            has = taken & (cols[:, i] < 0) & ((mask & bit) > 0)
            has &= before[np.arange(k), mask ^ bit] + weight[:, i, j] == here
            cols[has, i] = j
        mask = np.where(cols[:, i] >= 0, mask ^ (1 << np.maximum(cols[:, i], 0)), mask)
    return cols


def _solve_groups(groups: list) -> list:
    """Per group (weights (r, c), > 0 on overlapping pairs, 0 elsewhere), the (row, col) pairs of its
    maximum-weight matching, or None when another matching with other positive pairs comes within
    :data:`TIE_TOL` of it.

    Unique means: dropping any of its pairs costs more than the tolerance (every near-best matching holds
    them all, and none holds more, or it would weigh more than the best). Groups of one shape are solved
    together, by a dynamic programme over subsets of the smaller side (at most 10 predictions)."""
    out = [None] * len(groups)
    by_shape = {}
    for i, w in enumerate(groups):
        by_shape.setdefault(w.shape, []).append(i)
    for (r, c), idx in by_shape.items():
        stack = np.stack([groups[i] if c <= r else groups[i].T for i in idx])  # subsets of the smaller side
        tables = _matching_tables(stack)
        best = tables[-1].max(axis=1)
        cols = _best_pairs(stack, tables)
        k, rows = np.nonzero((cols >= 0) & (stack[np.arange(len(idx))[:, None], np.arange(stack.shape[1]),
                                                     np.maximum(cols, 0)] > 0))
        dropped = np.repeat(stack, np.bincount(k, minlength=len(idx)), axis=0)
        dropped[np.arange(len(k)), rows, cols[k, rows]] = -np.inf
        worse = _matching_tables(dropped)[-1].max(axis=1) < best[k] - TIE_TOL
        unique = np.bincount(k[~worse], minlength=len(idx)) == 0
        for n, i in enumerate(idx):
            if unique[n]:
                pairs = [(a, b) for a, b in enumerate(cols[n].tolist()) if b >= 0 and stack[n, a, b] > 0]
                out[i] = pairs if c <= r else [(b, a) for a, b in pairs]
    return out


def assign_by_groups(frames: list) -> list:
    """For frames (each g x p IoUs) whose assignment the greedy check left open: per frame, the assigned
    prediction per GT human (-1: none or a disjoint one) where the optimum of SciPy's problem is unique
    on the overlapping pairs, else None.

    Every cost is ``2 - w`` with ``w > 0`` for an overlapping pair and ``w = 0`` for a disjoint one, and
    the padding costs 1, so every assignment costs a constant minus the weights of the overlapping pairs
    it uses: its overlapping pairs are a maximum-weight matching of the overlap graph, which splits into
    independent groups of overlapping boxes (small, in real frames), each solved exactly.
    """
    out, groups, owner = [], [], []
    for j, iou in enumerate(frames):
        weight = 2.0 - _cost(iou)
        overlap = iou != np.float32(-1)
        # Boxes beyond the float range or inverted (a weight <= 0 where boxes overlap): SciPy decides.
        if not np.isfinite(weight).all() or (overlap & (weight <= 0)).any():
            out.append(None)
            continue
        out.append(np.full(iou.shape[0], -1, dtype=np.int64))
        weight = np.where(overlap, weight, 0.0)
        for rows, cols in _groups(overlap):
            groups.append(weight[np.ix_(rows, cols)])
            owner.append((j, rows, cols))
    for (j, rows, cols), pairs in zip(owner, _solve_groups(groups)):
        if pairs is None:
            out[j] = None
        elif out[j] is not None:
            out[j][[rows[a] for a, _ in pairs]] = [cols[b] for _, b in pairs]
    return out


def scipy_assign(iou: np.ndarray) -> np.ndarray:
    """The scorer's own call for one frame: (g,) assigned prediction per GT human, -1 for none."""
    from scipy.optimize import linear_sum_assignment

    g, p = iou.shape
    m = iou
    if g != p:
        n = max(g, p)
        m = np.zeros((n, n), dtype=np.float64)
        m[:g, :p] = iou
    rows, cols = linear_sum_assignment(1 - m)
    out = np.full(g, -1, dtype=np.int64)
    real = (rows < g) & (cols < p)
    out[rows[real]] = cols[real]
    return out


def assign_frames(iou: np.ndarray, g_count: np.ndarray, p_count: np.ndarray) -> np.ndarray:
    """The assigned prediction (local index, -1 for none) of every GT human of every frame.

    ``iou`` holds each frame's g x p IoUs row by row, frames one after the other (``g_count`` and
    ``p_count`` humans per frame). Frames of one shape go through the greedy check together, the rest
    through the groups of overlapping boxes (unless SciPy is loaded already); SciPy is imported only for
    frames with real ties."""
    pair_start = starts_of(g_count * p_count)
    g_start = starts_of(g_count)
    assigned = np.full(int(g_count.sum()), -1, dtype=np.int64)
    active = (g_count > 0) & (p_count > 0)
    if not active.any():
        return assigned
    shapes = np.stack([g_count, p_count], axis=1)
    uniq, inverse = np.unique(shapes[active], axis=0, return_inverse=True)
    frames_active = np.nonzero(active)[0]
    left = []  # (frame, its IoU matrix) of the frames the greedy check leaves open
    for s, (gs, ps) in enumerate(uniq):
        fs = frames_active[inverse.ravel() == s]
        stack = iou[pair_start[fs][:, None] + np.arange(gs * ps)[None, :]].reshape(len(fs), gs, ps)
        got, open_ = assign_shape(stack)
        assigned[(g_start[fs][:, None] + np.arange(gs)[None, :]).ravel()] = got.ravel()
        left += [(int(fs[j]), stack[j]) for j in open_]
    # Once SciPy is loaded it decides the open frames faster than their groups are set up; the groups
    # spare a process that has not loaded it the import (most of a second).
    loaded = "scipy.optimize" in sys.modules
    by_groups = [None] * len(left) if loaded else assign_by_groups([m for _, m in left])
    for (f, m), got in zip(left, by_groups):
        assigned[g_start[f]:g_start[f] + len(m)] = got if got is not None else scipy_assign(m)
    return assigned
