"""The part level of the score: GT parts of paired humans aligned with the predicted parts of the same name.

:func:`align` reads, for pairs (GT human, predicted human), every GT part in order, whether the paired
prediction has that part name and how many proposals it holds, and for every proposal its verb equality
and IoU with the GT part box. Like the public scorer it reads only what the score reads: the predicted
parts of paired humans, the parts the GT has, and the boxes of parts with a proposal of the right verb
(all boxes with ``full=True``). What it reads must be well formed; anything else raises
:class:`~tpslab.challenge.ScoringError` naming the video, frame, human and part.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from itertools import chain, repeat

import numpy as np

from tpslab.challenge import (BAD_PARTS, MISSING, NO_PARTS, PartColumns, PartsView, ScoringError, box_array,
                              find_parts, has_missing, ranges, segments)
from tpslab.errors import Problem
from tpslab.metrics.kernels import iou64


@dataclass
class Alignment:
    """Part-level data of aligned pairs: per GT part of the pairs (in order) and per proposal.

    ``nparts``: GT parts per pair. Per GT part: ``nprop`` (proposals of the predicted part of that name,
    0 when the prediction lacks it), ``gt_part`` (its index in the GT columns) and ``pred_human`` (the
    predicted human it is compared with). Per proposal: ``prop_part`` (its GT part), ``prop_iou`` (IoU
    with the GT part box, ``-inf`` where the box was not read), ``prop_same`` (same verb as the GT part)
    and ``verb_index`` (its verb in ``verbs``).
    """

    nparts: np.ndarray
    nprop: np.ndarray
    gt_part: np.ndarray
    pred_human: np.ndarray
    prop_part: np.ndarray
    prop_iou: np.ndarray
    prop_same: np.ndarray
    verbs: list
    verb_index: np.ndarray

    def select(self, keep_pair: np.ndarray) -> "Alignment":
        """The aligned data of the pairs ``keep_pair`` (a mask over the pairs)."""
        if keep_pair.all():
            return self
        keep_part = keep_pair[segments(self.nparts)[0]]
        keep_prop = keep_part[self.prop_part]
        new_index = np.cumsum(keep_part) - 1
        return Alignment(nparts=self.nparts[keep_pair], nprop=self.nprop[keep_part], gt_part=self.gt_part[keep_part],
                         pred_human=self.pred_human[keep_part], prop_part=new_index[self.prop_part[keep_prop]],
                         prop_iou=self.prop_iou[keep_prop], prop_same=self.prop_same[keep_prop], verbs=self.verbs,
                         verb_index=self.verb_index[keep_prop])


def where_pred(al: Alignment, gt: PartColumns, pred: PartColumns, i: int) -> str:
    """The predicted part compared with aligned GT part ``i``."""
    return f"{pred.where_human(int(al.pred_human[i]))}.parts.{gt.part_name[al.gt_part[i]]}"


def _malformed(file: str, places: list, what: str) -> ScoringError:
    return ScoringError(f"malformed parts in {file}", [Problem(file, w, f"expected {what}") for w in places])


_GT_PART_SHAPE, _PRED_PART_SHAPE = "{'box': [...], 'verb': ...}", "{'box': ..., 'verb': ...}"
# Pairs read together: a few thousand parts, whose objects stay in the cache between the passes.
_PAIRS = 512


class _Reader:
    """One alignment: the pairs, the columns of both files and the places to name in errors."""

    def __init__(self, gt: PartColumns, pred: PartColumns, g: np.ndarray, p: np.ndarray, mode: str):
        self.gt, self.pred, self.mode = gt, pred, mode
        self.g, self.p = g, p
        self.nparts = gt.human_parts[g]
        self.part_pair = segments(self.nparts)[0]
        self.gview = PartsView.of_humans(gt, g)
        self.gparts = self.gview.index

    def where_gt(self, i: int) -> str:
        return f"{self.gt.where_human(int(self.g[self.part_pair[i]]))}.parts.{self.gview.names[i]}"

    def where_pred(self, i: int) -> str:
        return f"{self.pred.where_human(int(self.p[self.part_pair[i]]))}.parts.{self.gview.names[i]}"

    def check_pred_parts(self) -> None:
        """Every paired prediction has readable ``parts``."""
        pred, PRED = self.pred, self.pred.file
        counts = pred.human_parts[self.p]
        if (counts == NO_PARTS).any():
            raise ScoringError("matched predicted humans without 'parts'",
                               [Problem(PRED, pred.where_human(int(h)) + ".parts", "missing")
                                for h in self.p[counts == NO_PARTS].tolist()])
        if (counts == BAD_PARTS).any():
            h = int(self.p[np.argmax(counts == BAD_PARTS)])
            suffix, message = pred.parts_problems[h]
            raise ScoringError(f"malformed parts in {PRED}", [Problem(PRED, pred.where_human(h) + suffix, message)])

    def match_names(self) -> np.ndarray:
        """Per GT part of the pairs, the predicted part of the same name in the paired prediction:
        ``sel``, the GT parts (positions) that have one; ``pfound`` holds those predicted parts in order."""
        sel, self.pfound = find_parts(self.pred, self.p, self.part_pair, self.gview.names)
        return sel

    def verbs(self, view: PartsView, at: np.ndarray, sel: np.ndarray, what: str) -> list:
        """The verbs of the parts at ``at`` in ``view`` (GT or predicted), each an object with a ``verb``."""
        verbs = view.verbs(at)
        if has_missing(verbs):
            where = self.where_gt if view is self.gview else self.where_pred
            raise _malformed(view.cols.file, [where(int(i)) for i, v in zip(sel.tolist(), verbs) if v is MISSING],
                             what)
        return verbs

    def pred_verbs(self, sel: np.ndarray) -> tuple[np.ndarray, list]:
        """N per predicted part found and the verbs of all their proposals, flat."""
        pred = self.pred
        if pred.form == self.mode == "list":
            pparts = self.pfound.index
            nprop = pred.part_nverb[pparts]
            return nprop, list(map(pred.proposal_verb.__getitem__, ranges(pred.verb_start[pparts], nprop).tolist()))
        pverbs = self.verbs(self.pfound, np.arange(len(sel)), sel, _PRED_PART_SHAPE)
        nprop = self.proposal_counts(pverbs, sel)
        return nprop, list(chain.from_iterable(pverbs)) if self.mode == "list" else pverbs

    def proposal_counts(self, pverbs: list, sel: np.ndarray) -> np.ndarray:
        """N per part: the length of each verb list (mode 'list'), else 1 (no lists allowed)."""
        if self.mode == "list":
            try:
                return np.fromiter(map(list.__len__, pverbs), np.int64, len(pverbs))  # TypeError if not a list
            except TypeError:
                pass
            raise ScoringError("malformed proposals", [
                Problem(self.pred.file, self.where_pred(int(i)),
                        "mode 'list' expects 'verb': [verb, ...]" + (" (got one verb: use mode='single')"
                                                                     if isinstance(v, str) else ""))
                for i, v in zip(sel.tolist(), pverbs) if type(v) is not list])
        if list in set(map(type, pverbs)):
            raise ScoringError("proposal lists in mode 'single'", [
                Problem(self.pred.file, self.where_pred(int(i)),
                        "mode 'single' expects one verb, got a list (use mode='list')")
                for i, v in zip(sel.tolist(), pverbs) if isinstance(v, list)])
        return np.ones(len(pverbs), dtype=np.int64)

    def gt_boxes(self, at: np.ndarray, sel: np.ndarray) -> np.ndarray:
        """The boxes of the GT parts at ``at`` in ``gview``."""
        gt = self.gt
        if gt.form == "single":
            return gt.part_box_array[self.gparts[at]]
        boxes = self.gview.boxes(at)
        if has_missing(boxes):
            raise _malformed(gt.file, [self.where_gt(int(i)) for i, b in zip(sel.tolist(), boxes) if b is MISSING],
                             _GT_PART_SHAPE)
        return box_array(boxes, lambda i: self.where_gt(int(sel[i])) + ".box", gt.file)

    def pred_boxes(self, at: np.ndarray, nprop: np.ndarray, sel: np.ndarray) -> np.ndarray:
        """The proposal boxes of the predicted parts found at ``at`` (``nprop`` each), flattened; their
        verbs were read."""
        pred = self.pred
        if pred.form == self.mode == "list":
            pparts = self.pfound.index[at]
            nbox = pred.part_nbox[pparts]
            if not np.array_equal(nbox, nprop):
                raise self._box_list_error(sel[nbox != nprop], nprop[nbox != nprop])
            return pred.proposal_box_array[ranges(pred.proposal_start[pparts], nbox)]
        if pred.form == self.mode == "single":
            return pred.part_box_array[self.pfound.index[at]]
        boxes = self.pfound.boxes(at)
        if has_missing(boxes):
            raise _malformed(pred.file, [self.where_pred(int(i)) for i, b in zip(sel.tolist(), boxes)
                                         if b is MISSING], _PRED_PART_SHAPE)
        if self.mode == "list":
            self._check_box_lists(boxes, nprop, sel)
            boxes = list(chain.from_iterable(boxes))
        else:
            self._check_single_boxes(boxes, sel)
        owner, rank = segments(nprop)
        return box_array(boxes, lambda i: f"{self.where_pred(int(sel[owner[i]]))}.box[{rank[i]}]", pred.file)

    def _box_list_error(self, sel, nprop) -> ScoringError:
        return ScoringError("malformed proposals", [
            Problem(self.pred.file, self.where_pred(int(i)),
                    f"mode 'list' expects 'box': [box, ...] with one box per verb ({n})")
            for i, n in zip(sel.tolist(), nprop.tolist())])

    def _check_box_lists(self, boxes: list, nprop: np.ndarray, sel: np.ndarray) -> None:
        """Mode 'list': every 'box' is a list of as many boxes as the part has verbs."""
        try:
            if np.array_equal(np.fromiter(map(list.__len__, boxes), np.int64, len(boxes)), nprop):
                return
        except TypeError:
            pass
        bad = np.array([type(b) is not list or len(b) != n for b, n in zip(boxes, nprop.tolist())], dtype=bool)
        raise self._box_list_error(sel[bad], nprop[bad])

    def _check_single_boxes(self, boxes: list, sel: np.ndarray) -> None:
        """Mode 'single': one box per part, not a list of boxes."""
        try:
            first = set(map(type, map(operator.itemgetter(0), boxes)))
        except (IndexError, KeyError, TypeError):
            return  # malformed boxes: reported by the box check
        if list not in first:
            return
        raise ScoringError("proposal lists in mode 'single'", [
            Problem(self.pred.file, self.where_pred(int(i)),
                    "mode 'single' expects one box, got a list of boxes (use mode='list')")
            for i, b in zip(sel.tolist(), boxes) if isinstance(b, list) and b and isinstance(b[0], list)])


def _align_block(r: _Reader, full: bool) -> Alignment:
    """:func:`align` of the pairs of ``r``."""
    r.check_pred_parts()
    sel = r.match_names()
    gverbs = r.verbs(r.gview, sel, sel, _GT_PART_SHAPE)
    nprop, pverbs = r.pred_verbs(sel)
    owner = np.repeat(np.arange(len(sel)), nprop)  # position in ``sel`` of each proposal's part
    same = np.fromiter(map(operator.eq, chain.from_iterable(map(repeat, gverbs, nprop.tolist())), pverbs),
                       bool, len(pverbs))
    # Parts whose IoU can matter: some proposal has the GT verb (all parts with ``full``).
    need = np.bincount(owner[same], minlength=len(sel)) > 0 if not full else np.ones(len(sel), bool)
    need_idx = np.nonzero(need)[0]
    gbox = r.gt_boxes(sel[need_idx], sel[need_idx])
    pbox = r.pred_boxes(need_idx, nprop[need_idx], sel[need_idx])
    prop_need = need[owner]
    owner_need = owner[prop_need]
    box_row = np.cumsum(need) - 1  # row of each needed part in ``gbox``
    iou = np.full(len(pverbs), -np.inf)
    iou_need, zero_union = iou64(gbox[box_row[owner_need]], pbox)
    if zero_union.any():
        raise ScoringError("part boxes with an empty union (the scorer would divide by zero)", [
            Problem(r.pred.file, r.where_pred(int(sel[owner_need[i]])), "box union with the GT part is 0")
            for i in np.nonzero(zero_union)[0]])
    iou[prop_need] = iou_need
    n = np.zeros(len(r.gparts), dtype=np.int64)
    n[sel] = nprop
    return Alignment(nparts=r.nparts, nprop=n, gt_part=r.gparts, pred_human=r.p[r.part_pair], prop_part=sel[owner],
                     prop_iou=iou, prop_same=same, verbs=pverbs, verb_index=np.arange(len(pverbs)))


def _concatenate(blocks: list) -> Alignment:
    offsets = np.cumsum([0] + [len(b.nprop) for b in blocks])
    verbs = list(chain.from_iterable(b.verbs for b in blocks))
    return Alignment(nparts=np.concatenate([b.nparts for b in blocks]), nprop=np.concatenate([b.nprop for b in blocks]),
                     gt_part=np.concatenate([b.gt_part for b in blocks]),
                     pred_human=np.concatenate([b.pred_human for b in blocks]),
                     prop_part=np.concatenate([b.prop_part + off for b, off in zip(blocks, offsets.tolist())]),
                     prop_iou=np.concatenate([b.prop_iou for b in blocks]),
                     prop_same=np.concatenate([b.prop_same for b in blocks]), verbs=verbs,
                     verb_index=np.arange(len(verbs)))


def align(gt: PartColumns, pred: PartColumns, g: np.ndarray, p: np.ndarray, mode: str,
          full: bool = False) -> Alignment:
    """Part-level data of GT humans ``g`` paired with predicted humans ``p`` (column indices).

    Boxes are read (and checked) only for parts with a proposal of the right verb, the only ones whose IoU
    can matter; ``full=True`` reads them all (for the per-part details and the part oracles).

    Pairs are read in blocks (each block's passes then find its objects in the cache); when one block is
    malformed, all pairs are read at once, so that the error lists every place of the first problem."""
    try:
        blocks = [_align_block(_Reader(gt, pred, g[s:s + _PAIRS], p[s:s + _PAIRS], mode), full)
                  for s in range(0, max(len(g), 1), _PAIRS)]
    except ScoringError:
        blocks = [_align_block(_Reader(gt, pred, g, p, mode), full)]  # raises with every place
    return _concatenate(blocks) if len(blocks) != 1 else blocks[0]


__all__ = ["Alignment", "align", "where_pred"]
