"""Challenge files: ground truth from a dataset, predictions from tables, validation, zip in and out.

- :func:`export_ground_truth` writes ``gt_vid_result.json`` and ``gt_part_result.json`` for any set of videos
  of a loaded dataset (e.g. the validation split): scored frames only (img_00001, img_00006, ...), parts
  keyed by name, part-less humans and frames without humans kept.
- :func:`build_predictions` turns prediction tables (the long format below) into ``pred_vid_result`` and
  ``pred_part_result`` structures; :func:`write_prediction_files` and :func:`write_submission_zip` write them.
- :func:`validate_submission` checks schema, vocabulary names, limits and coverage of the ground truth and
  returns a readable :class:`SubmissionReport`; it accepts nothing the scorer refuses.
- :func:`read_submission` reads a folder or a zip safely (no absolute paths or ``..``; the two files at the
  root or inside one folder; no encrypted members; at most :data:`MAX_SUBMISSION_BYTES`, inflated in chunks);
  :func:`open_submission` and :func:`open_ground_truth` read the part file straight into columns
  (:class:`tpslab.challenge.PartColumns`), which the validator and the scorer take as they are;
  :func:`open_evaluation` reads both, the two part files decoded at the same time.

The challenge's conventions (frame keys, the scored stride, the limits, the file names) live in
:mod:`tpslab.challenge`; the names below are kept for existing code.

Prediction tables (input of :func:`build_predictions`)
------------------------------------------------------
``parts``: one row per proposal of one part of one predicted human, columns

- ``video`` (str), ``frame`` (int, 1-based as in ``img_00001.json``), ``human`` (any id, unique within
  the frame; humans are written in ascending id order),
- ``human_x1, human_y1, human_x2, human_y2``: the human box (the same on every row of that human),
- ``part`` (body part name; NA for a human predicted without parts), ``part_x1 .. part_y2``, ``state``,
- optional ``proposal``: the rank of the proposal (ascending; default: row order).

``videos``: the predicted class per video, as a ``{video: label}`` mapping, a Series indexed by video, or a
DataFrame with columns ``video`` and ``label`` (or ``predicted``). ``frames`` (optional): (video, frame)
pairs to write even where no human was predicted; see :func:`build_predictions` for why that matters.
"""

from tpslab.challenge import (GT_PART, GT_VID, MAX_HUMANS, MAX_PROPOSALS, PRED_PART, PRED_VID,  # noqa: F401
                              SCORED_STRIDE, frame_key, frame_number, is_scored)
from tpslab.submission.files import (MAX_INFLATE_RATIO, MAX_SUBMISSION_BYTES, RATIO_FREE_BYTES,  # noqa: F401
                                     SCORED_FRAMES_PER_VIDEO, TEST_VIDEOS, SubmissionError, open_evaluation,
                                     open_ground_truth, open_submission, read_ground_truth, read_submission,
                                     write_json_pair, write_prediction_files, write_submission_zip)
from tpslab.submission.tables import build_predictions, export_ground_truth
from tpslab.submission.validation import NAME_KINDS, SubmissionReport, validate_submission  # noqa: F401

__all__ = ["GT_PART", "GT_VID", "MAX_SUBMISSION_BYTES", "PRED_PART", "PRED_VID", "SubmissionError", "SubmissionReport",
           "build_predictions", "export_ground_truth", "frame_key", "frame_number", "is_scored", "open_evaluation",
           "open_ground_truth", "open_submission", "read_ground_truth", "read_submission", "validate_submission",
           "write_json_pair", "write_prediction_files", "write_submission_zip"]
