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
from collections import defaultdict
from dataclasses import dataclass
from itertools import chain, repeat

import numpy as np

from tpslab.challenge import BAD_PARTS, MISSING, NO_PARTS, PartColumns, ScoringError, box_array, segments
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


def name_codes(*columns: PartColumns) -> list:
    """The part names of each of ``columns`` as integer codes shared by all (equal names, equal codes)."""
    index = defaultdict()
    index.default_factory = index.__len__  # a new name takes the next code
    return [np.fromiter(map(index.__getitem__, cols.part_name), np.int64, len(cols.part_name)) for cols in columns]


def _malformed(file: str, places: list, what: str) -> ScoringError:
    return ScoringError(f"malformed parts in {file}", [Problem(file, w, f"expected {what}") for w in places])


_GT_PART_SHAPE, _PRED_PART_SHAPE = "{'box': [...], 'verb': ...}", "{'box': ..., 'verb': ...}"


class _Reader:
    """One alignment: the pairs, the columns of both files and the places to name in errors."""

    def __init__(self, gt: PartColumns, pred: PartColumns, g: np.ndarray, p: np.ndarray, mode: str, codes: list):
        self.gt, self.pred, self.mode, self.codes = gt, pred, mode, codes
        self.g, self.p = g, p
        self.nparts = gt.human_parts[g]
        self.part_pair = segments(self.nparts)[0]
        self.gparts = gt.parts_of(g)

    def where_gt(self, i: int) -> str:
        return self.gt.where_part(int(self.gparts[i]))

    def where_pred(self, i: int) -> str:
        return f"{self.pred.where_human(int(self.p[self.part_pair[i]]))}.parts.{self.gt.part_name[self.gparts[i]]}"

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

    def match_names(self) -> tuple[np.ndarray, np.ndarray]:
        """Per GT part of the pairs, the predicted part of the same name in the paired prediction:
        ``(sel, matched)``, the GT parts (positions) that have one and its index in the pred columns."""
        pred = self.pred
        pparts = pred.parts_of(self.p)
        ppair = segments(pred.human_parts[self.p])[0]
        gcode, pcode = self.codes[0][self.gparts], self.codes[1][pparts]
        width = int(max(gcode.max(initial=0), pcode.max(initial=0))) + 1
        gkey, pkey = self.part_pair * width + gcode, ppair * width + pcode  # names are unique within a human
        if not len(pkey):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        order = np.argsort(pkey, kind="stable")
        pos = np.minimum(np.searchsorted(pkey[order], gkey), len(pkey) - 1)
        matched = pparts[order][pos]
        present = pkey[order][pos] == gkey
        present[present] = ~pred.is_null(matched[present])  # a null part is no part, as dict.get sees it
        sel = np.nonzero(present)[0]
        return sel, matched[sel]

    def verbs(self, cols: PartColumns, parts: np.ndarray, sel: np.ndarray, what: str) -> list:
        """The verbs of ``parts`` (GT or predicted), each part an object with a ``verb``."""
        verbs = cols.part_verb_values(parts)
        if MISSING in verbs:
            where = self.where_gt if cols is self.gt else self.where_pred
            raise _malformed(cols.file, [where(int(i)) for i, v in zip(sel.tolist(), verbs) if v is MISSING], what)
        return verbs

    def pred_verbs(self, pparts: np.ndarray, sel: np.ndarray) -> tuple[np.ndarray, list]:
        """N per predicted part and the verbs of all their proposals, flat."""
        pred = self.pred
        if pred.form == self.mode == "list":
            nprop = pred.part_nverb[pparts]
            return nprop, list(map(pred.proposal_verb.__getitem__, _ranges_of(pred.verb_start[pparts], nprop).tolist()))
        pverbs = self.verbs(pred, pparts, sel, _PRED_PART_SHAPE)
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

    def gt_boxes(self, gparts: np.ndarray, sel: np.ndarray) -> np.ndarray:
        gt = self.gt
        if gt.form == "single":
            return gt.part_box_array[gparts]
        boxes = gt.part_box_values(gparts)
        if MISSING in boxes:
            raise _malformed(gt.file, [self.where_gt(int(i)) for i, b in zip(sel.tolist(), boxes) if b is MISSING],
                             _GT_PART_SHAPE)
        return box_array(boxes, lambda i: self.where_gt(int(sel[i])) + ".box", gt.file)

    def pred_boxes(self, pparts: np.ndarray, nprop: np.ndarray, sel: np.ndarray) -> np.ndarray:
        """The proposal boxes of ``pparts`` (``nprop`` each), flattened; their verbs were read."""
        pred = self.pred
        if pred.form == self.mode == "list":
            nbox = pred.part_nbox[pparts]
            if not np.array_equal(nbox, nprop):
                raise self._box_list_error(sel[nbox != nprop], nprop[nbox != nprop])
            return pred.proposal_box_array[_ranges_of(pred.proposal_start[pparts], nbox)]
        if pred.form == self.mode == "single":
            return pred.part_box_array[pparts]
        boxes = pred.part_box_values(pparts)
        if MISSING in boxes:
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


def _ranges_of(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    group, pos = segments(counts)
    return starts[group] + pos


def align(gt: PartColumns, pred: PartColumns, g: np.ndarray, p: np.ndarray, mode: str,
          full: bool = False, codes: list | None = None) -> Alignment:
    """Part-level data of GT humans ``g`` paired with predicted humans ``p`` (column indices).

    Boxes are read (and checked) only for parts with a proposal of the right verb, the only ones whose IoU
    can matter; ``full=True`` reads them all (for the per-part details and the part oracles). ``codes``:
    the part names of both files as :func:`name_codes` gives them (made here when not given)."""
    r = _Reader(gt, pred, g, p, mode, codes or name_codes(gt, pred))
    r.check_pred_parts()
    sel, pparts = r.match_names()
    gverbs = r.verbs(gt, r.gparts[sel], sel, _GT_PART_SHAPE)
    nprop, pverbs = r.pred_verbs(pparts, sel)
    owner = np.repeat(np.arange(len(sel)), nprop)  # position in ``sel`` of each proposal's part
    same = np.fromiter(map(operator.eq, chain.from_iterable(map(repeat, gverbs, nprop.tolist())), pverbs),
                       bool, len(pverbs))
    # Parts whose IoU can matter: some proposal has the GT verb (all parts with ``full``).
    need = np.bincount(owner[same], minlength=len(sel)) > 0 if not full else np.ones(len(sel), bool)
    need_idx = np.nonzero(need)[0]
    gbox = r.gt_boxes(r.gparts[sel[need_idx]], sel[need_idx])
    pbox = r.pred_boxes(pparts[need_idx], nprop[need_idx], sel[need_idx])
    prop_need = need[owner]
    owner_need = owner[prop_need]
    box_row = np.cumsum(need) - 1  # row of each needed part in ``gbox``
    iou = np.full(len(pverbs), -np.inf)
    iou_need, zero_union = iou64(gbox[box_row[owner_need]], pbox)
    if zero_union.any():
        raise ScoringError("part boxes with an empty union (the scorer would divide by zero)",
                           [Problem(pred.file, r.where_pred(int(sel[owner_need[i]])), "box union with the GT part is 0")
                            for i in np.nonzero(zero_union)[0]])
    iou[prop_need] = iou_need
    n = np.zeros(len(r.gparts), dtype=np.int64)
    n[sel] = nprop
    return Alignment(nparts=r.nparts, nprop=n, gt_part=r.gparts, pred_human=p[r.part_pair], prop_part=sel[owner],
                     prop_iou=iou, prop_same=same, verbs=pverbs, verb_index=np.arange(len(pverbs)))


__all__ = ["Alignment", "align", "name_codes", "where_pred"]
