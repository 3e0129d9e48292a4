"""The ``tpslab`` command: thin argparse wrappers around the library.

Each command is a ``_cmd_<name>(args) -> int`` function plus its parser in ``_build_parser``.
Heavy modules are imported inside the command functions so ``tpslab --help`` stays instant.

Errors: a bad argument or an input problem is one line on stderr, ``tpslab <command>: error: ...``,
and exit status 2 (argparse's usage errors included). :func:`main` turns the exceptions that mean
"bad input" into that line: ``OSError`` (missing, unreadable or unwritable paths), ``ValueError``
(every tpslab input error derives from it: annotations, submissions, scores, bad values) and tpslab's
``UnknownNameError`` and ``VideoError``. Anything else is a bug and keeps its traceback (exit status 1); with
``TPSLAB_TRACEBACK=1`` the expected errors print theirs before their line, and still exit 2.
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import sys

from tpslab.errors import printable

TRACEBACK_ENV = "TPSLAB_TRACEBACK"


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line, ``tpslab <command>: error: ...``, and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _whole_number(minimum: int):
    """An argparse type: an int >= ``minimum``."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {minimum}, got {text!r}")
        return value

    return parse


def _number(accept, what: str):
    """An argparse type: a finite number that ``accept`` takes, ``what`` saying which in the error (checked
    before any data is loaded)."""

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or not accept(value):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value

    return parse


_fraction = _number(lambda v: 0 < v < 1, "a number strictly between 0 and 1")
_share = _number(lambda v: 0 <= v <= 1, "a number from 0 to 1")
_holdout = _number(lambda v: 0 <= v < 1, "a number from 0 up to 1 (not 1 itself)")
_rate = _number(lambda v: v >= 0, "a finite number >= 0")


def _one_line(e: BaseException) -> str:
    """An exception as one line: ``path: what is wrong`` for OSErrors, the summary and the first problem
    (and how many more) for errors that list problems."""
    if isinstance(e, OSError) and e.filename is not None:
        text = f"{e.filename}: {e.strerror or e}"
    else:
        text = str(e)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    problems = getattr(e, "problems", None) or []
    if len(lines) > 1 and problems:
        p = problems[0]
        path = p.path if not lines[0].endswith(f" {p.path}") else None  # the summary names the file already
        first = ": ".join(x for x in (path, p.field, p.message) if x)
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return f"{lines[0]}: {first}{more}"
    return "; ".join(lines)


class _Refused(ValueError):
    """A command refuses its input; the message is the whole explanation."""


def _cmd_mini(args) -> int:
    from tpslab import synthetic

    if args.out is None:
        root = synthetic.ensure_mini(preset=args.preset, seed=args.seed, progress=not args.quiet)
    else:
        root, reused = synthetic.generate_or_reuse(args.out, preset=args.preset, seed=args.seed,
                                                   progress=not args.quiet)
        if reused and not args.quiet:
            print(f"tpslab mini: {root} already holds this dataset; reused as it is", file=sys.stderr)
    print(root)
    return 0


def _cmd_index(args) -> int:
    import time

    from tpslab.dataset import load_dataset

    t = time.perf_counter()
    ds = load_dataset(args.root, strict=False, workers=args.workers, rebuild=args.rebuild,
                      progress=not args.quiet)
    took = time.perf_counter() - t
    source = "read from cache" if ds.index.from_cache else "built"
    print(f"{ds}\nindex {source} in {took:.2f} s: {ds.index.cache_path}")
    note = ds.skipped_note()
    if note:
        print(note)
    return 0


def _cmd_validate(args) -> int:
    from tpslab.validate import validate

    report = validate(args.root, probe_videos=not args.no_video_probe, progress=not args.quiet)
    shown = report.problems if args.max is None else report.problems[: args.max]
    for p in shown:
        print(p)
    if len(shown) < len(report.problems):
        print(f"... {len(report.problems) - len(shown)} more")
    print(report.summary())
    failed = report.errors or (args.strict and report.warnings)
    return 1 if failed else 0


def _cmd_check_videos(args) -> int:
    from tpslab.dataset import load_dataset
    from tpslab.frames import check_videos, summarize_check

    ds = load_dataset(args.root, strict=False, progress=not args.quiet)
    report = check_videos(ds, decode=args.decode, workers=args.workers, progress=not args.quiet)
    print(summarize_check(report, max_rows=args.max))
    return 0 if (report["status"] == "ok").all() else 1


def _cmd_extract_frames(args) -> int:
    from tpslab.dataset import check_video_names, load_dataset, read_video_list
    from tpslab.frames import extract_frames, prepare_extraction, summarize_extraction
    from tpslab.home import resolve_root
    from tpslab.layout import check_release_root

    def fail(message) -> int:
        print(f"tpslab extract-frames: error: {message}", file=sys.stderr)
        return 2

    if args.out is not None and args.out_option is not None:
        return fail("give the output folder once: as OUT after ROOT, or as --out OUT")
    out = args.out if args.out is not None else args.out_option
    if out is None:
        return fail("no output folder: pass --out OUT (or ROOT OUT)")
    settings = {"short_side": args.short_side}
    if args.quality is not None:
        settings["quality"] = args.quality
    try:  # a bad ROOT, bad settings, an unwritable OUT and a bad video list fail here, before any work
        root = check_release_root(resolve_root(args.root, progress=not args.quiet))
        prepare_extraction(out, **settings)
        videos = None if args.videos is None else read_video_list(args.videos)
    except (ValueError, OSError) as e:
        return fail(e)
    ds = load_dataset(root, strict=False, progress=not args.quiet)
    if videos is not None:
        try:
            check_video_names(ds, videos)
        except ValueError as e:
            return fail(e)
        ds = ds.subset(videos)
    report = extract_frames(ds, out, workers=args.workers, replace=args.replace, progress=not args.quiet,
                            **settings)
    print(summarize_extraction(report, max_rows=args.max))
    return 1 if report["status"].isin(["error", "refused"]).any() else 0


def _read_pair(args):
    """(gt_vid, gt_part) of ``args.gt_dir`` (None, None without it) and (pred_vid, pred_part) of ``args.pred``,
    the part files read straight into columns (the validator and the scorer share them)."""
    from tpslab.submission import open_evaluation, open_submission

    limit = {} if args.max_bytes is None else {"max_bytes": args.max_bytes}
    if args.gt_dir is None:
        return (None, None), open_submission(args.pred, mode=args.mode, **limit)
    return open_evaluation(args.gt_dir, args.pred, mode=args.mode, **limit)


def _cmd_evaluate(args) -> int:
    import json

    from tpslab.metrics import ScoringError, TPSScorer
    from tpslab.submission import validate_submission

    (gt_vid, gt_part), (pred_vid, pred_part) = _read_pair(args)
    report = validate_submission(pred_vid, pred_part, gt_vid, gt_part, mode=args.mode)
    if report.looks_like not in (None, args.mode):
        raise _Refused(f"{args.pred} looks like a mode '{report.looks_like}' submission (every part holds "
                       f"{'lists of boxes and verbs' if report.looks_like == 'list' else 'one box and one verb'}), "
                       f"not mode '{args.mode}': rerun with --mode {report.looks_like}")
    unknown = report.describe_unknown_names()
    if unknown and not args.allow_unknown_names:
        raise _Refused(f"{args.pred} has names outside the vocabulary and the ground truth, which never score: "
                       f"{unknown}; fix them, or pass --allow-unknown-names to score anyway")
    try:
        scorer = TPSScorer(gt_vid, gt_part, pred_vid, pred_part, mode=args.mode, pairing=args.pairing)
        result = scorer.score(args.human_iou, args.part_iou)
        grid = scorer.grid() if args.grid else None
    except ScoringError as e:
        if len(e.problems) > 1:
            raise _Refused(f"{_one_line(e)}; `tpslab check-submission {args.pred} --gt {args.gt_dir} "
                           f"--mode {args.mode}` lists them all") from e
        raise
    if unknown:
        print(f"tpslab evaluate: note: scored with unknown names (they never score): {unknown}", file=sys.stderr)
    unlabelled = [v for v in gt_part.videos if v not in gt_vid]
    if unlabelled:
        print(f"tpslab evaluate: note: {len(unlabelled)} video(s) of {args.gt_dir}/gt_part_result.json have no "
              f"class in gt_vid_result.json and are not scored (first: {unlabelled[0]})", file=sys.stderr)
    if not report.ok:
        print(f"tpslab evaluate: note: scored as the public script reads it, but the submission has "
              f"{len(report.errors)} error(s): `tpslab check-submission {args.pred} --gt {args.gt_dir} --mode "
              f"{args.mode}` lists them", file=sys.stderr)
    if args.json:
        out = result.summary()
        if grid is not None:
            out["grid"] = grid.to_dict(orient="records")
        print(json.dumps(out))
        return 0
    print(f"area      {result.area:.6f}")
    print(f"accuracy  {result.accuracy:.6f}")
    print(f"mean PSC  {result.mean_psc:.6f}")
    print(f"({len(result.psc)} videos, human IoU {result.human_iou}, part IoU {result.part_iou}, "
          f"mode {result.mode}, {result.pairing} pairing)")
    print(f"reproduces {result.summary()['reproduces']}")
    if grid is not None:
        print(grid.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    return 0


def _cmd_check_submission(args) -> int:
    from tpslab.submission import validate_submission
    from tpslab.submission.files import file_warnings

    (gt_vid, gt_part), (pred_vid, pred_part) = _read_pair(args)
    report = validate_submission(pred_vid, pred_part, gt_vid, gt_part, mode=args.mode)
    limit = {} if args.max_bytes is None else {"max_bytes": args.max_bytes}
    report.problems += file_warnings(args.pred, **limit)  # the files read once more: what parsing drops
    refused = report.describe_unknown_names() and not args.allow_unknown_names
    if refused:  # as `tpslab evaluate` refuses them
        report = report.refusing_unknown_names()
    print(report.__str__(limit=args.max))
    if refused:
        print("(names outside the vocabulary and the ground truth never score: `tpslab evaluate` refuses them; "
              "--allow-unknown-names lets both commands pass them, as warnings)")
    return 0 if report.ok else 1


def _cmd_export_gt(args) -> int:
    from pathlib import Path

    from tpslab.dataset import check_video_names, load_dataset, read_video_list
    from tpslab.submission import GT_PART, GT_VID, export_ground_truth

    out = Path(args.out)
    if out.exists() and not out.is_dir():  # refused before the dataset is loaded
        raise NotADirectoryError(errno.ENOTDIR, "exists and is not a folder", str(out))
    videos = read_video_list(args.videos) if args.videos is not None else None
    ds = load_dataset(args.root, progress=not args.quiet)
    if videos is not None:
        check_video_names(ds, videos)
    else:
        train, val = ds.split_train_val(val_fraction=args.val_fraction, seed=args.seed)
        videos = val if args.split == "val" else train
        if not videos:
            raise _Refused(f"the {args.split} side of the split of {ds.root} has no videos: nothing to export")
    gt_vid, gt_part = export_ground_truth(ds, out=out, videos=videos)
    frames = sum(len(f) for f in gt_part.values())
    print(f"{len(gt_vid)} videos, {frames} scored frames -> {out / GT_VID}, {out / GT_PART}")
    return 0


def _cmd_export_coco(args) -> int:
    from tpslab.dataset import check_video_names, load_dataset, read_video_list
    from tpslab.fileio import need_folder
    from tpslab.interop import NO_FRAMES, check_coco_out, export_coco

    out = check_coco_out(args.out)  # an --out tpslab did not write, and a missing FRAMES, fail before any work
    need_folder(args.frames, NO_FRAMES)
    videos = read_video_list(args.videos) if args.videos is not None else None
    ds = load_dataset(args.root, progress=not args.quiet)
    if videos is not None:
        check_video_names(ds, videos)
    elif args.split != "all":
        train, val = ds.split_train_val(val_fraction=args.val_fraction, seed=args.seed)
        videos = train if args.split == "train" else val
        if not videos:
            raise _Refused(f"the {args.split} side of the split of {ds.root} has no videos: nothing to export")
    info = export_coco(ds, args.frames, out, videos=videos, missing="skip" if args.skip_missing else "error",
                       workers=args.workers, progress=not args.quiet)
    notes = [f"{info['resized_videos']} videos with resized frames (boxes scaled)"]
    if info["skipped_frames"]:
        notes.append(f"{info['skipped_frames']} annotated frames not in {args.frames} skipped")
    if info["videos_without_annotated_frames"]:
        notes.append(f"{len(info['videos_without_annotated_frames'])} videos without annotated frames")
    if info["inexact_boxes"]:
        notes.append(f"{info['inexact_boxes']} boxes with coordinates finer than 6 decimals (read back rounded)")
    print(f"{info['images']} images of {info['videos']} videos, {info['persons']} persons, {info['parts']} parts "
          f"-> {out}; {'; '.join(notes)}")
    return 0


def _cmd_export_lists(args) -> int:
    from tpslab.dataset import load_dataset
    from tpslab.fileio import need_folder
    from tpslab.interop import NO_FRAMES, check_lists_out, export_lists

    out = check_lists_out(args.out, frames=args.frames is not None)  # refused before any work
    if args.frames is not None:
        need_folder(args.frames, NO_FRAMES)
    ds = load_dataset(args.root, progress=not args.quiet)
    result = export_lists(ds, out, frames=args.frames, val_fraction=args.val_fraction, seed=args.seed,
                          hide_test_labels=args.hide_test_labels, missing="skip" if args.skip_missing else "error",
                          workers=args.workers, progress=not args.quiet)
    files = result["files"]
    kinds = "rawframe and video lists" if args.frames is not None else "video lists (no --frames: no rawframe lists)"
    skipped = sum(len(v) for v in result["skipped"].values())
    print(f"train {files['train_list_videos.txt']}, val {files['val_list_videos.txt']}, test "
          f"{files['test_list_videos.txt']} videos: {kinds}, PySlowFast csv files and classes.txt "
          f"({files['classes.txt']} actions) -> {out}" + (f"; {skipped} list entries skipped" if skipped else ""))
    return 0


def _end_process_group() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _cmd_train_recognizer(args) -> int:
    from tpslab.pipeline import train_run

    quiet = args.quiet or int(os.environ.get("RANK", "0")) != 0
    try:
        summary = train_run(args.root, args.out, epochs=args.epochs, batch_size=args.batch_size, device=args.device,
                            workers=args.workers, resume=args.resume, val_fraction=args.val_fraction, seed=args.seed,
                            frames=args.frames, lr=args.lr, max_crops=args.max_crops, balance=args.balance,
                            cap_per_state=args.cap_per_state, patience=args.patience, backbone=args.backbone,
                            threads=args.threads, progress=not quiet, log=None if quiet else print)
    except KeyError as e:  # a video without a file: a problem of the input, said in one line
        raise _Refused(e.args[0] if e.args else str(e)) from e
    finally:
        _end_process_group()
    if not quiet:
        last = summary["last"]
        val = (f", validation top-1 {last['val_top1']:.3f} (mean-class {last['val_mean_class_acc']:.3f})"
               if "val_top1" in last else "")
        print(f"trained {summary['epochs']} epochs on {summary['train_crops']} part crops of "
              f"{summary['train_videos']} videos in {summary['seconds']:.1f} s: loss {last.get('train_loss', 0):.4f}"
              f"{val} -> {args.out}/model.pt")
    return 0


def _cmd_predict(args) -> int:
    from tpslab.dataset import read_video_list
    from tpslab.pipeline import predict_run

    writer = int(os.environ.get("RANK", "0")) == 0  # under torchrun, rank 0 writes the zip and reports
    quiet = args.quiet or not writer
    try:
        videos = None if args.videos is None else read_video_list(args.videos)
        summary = predict_run(args.root, args.run, args.boxes, args.out, videos=videos, frames=args.frames,
                              device=args.device, workers=args.workers, batch_size=args.batch_size,
                              backbone=args.backbone, threads=args.threads, overwrite=args.overwrite,
                              progress=not quiet, log=None if quiet else print)
    except KeyError as e:
        raise _Refused(e.args[0] if e.args else str(e)) from e
    finally:
        _end_process_group()
    if writer:
        for note in summary["notes"]:
            print(f"tpslab predict: note: {note}", file=sys.stderr)
        if summary["frames_not_scored"]:
            print(f"tpslab predict: note: {summary['frames_not_scored']} frame(s) of {args.boxes} are not frames "
                  "the challenge scores: predicted, and left out of the submission", file=sys.stderr)
    if not quiet:
        print(f"predicted {summary['videos']} videos ({summary['part_boxes_written']} part boxes in the zip) in "
              f"{summary['seconds']:.1f} s -> {summary['out']}")
    return 0


def _cmd_competition(args) -> int:
    from tpslab.competition import write_competition

    made = write_competition(args.out, preset=args.preset, seed=args.seed, jitter=args.jitter, drop=args.drop,
                             start=args.start)
    base = made["baseline"]
    print(f"{made['out']}: a competition on the {made['videos']} test videos of the mini dataset "
          f"(preset {args.preset}, seed {args.seed})")
    print(f"  upload {made['out'] / 'bundle.zip'} to Codabench; give learners {made['out'] / 'starting_kit'}")
    print(f"  the starting kit's baseline scores {base['score']:.4f} (accuracy {base['accuracy']:.4f}, "
          f"mean PSC {base['mean_psc']:.4f})")
    return 0


def _iso_date(text):
    """An argparse type: a date written YYYY-MM-DD (returned as that text)."""
    from datetime import date

    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a date written YYYY-MM-DD, got {text!r}") from None


class _PresetNames:
    """The mini dataset's preset names as argparse ``choices``, read from tpslab.synthetic only when a
    command's --preset is checked or its help shown (importing the generator is 0.2 s of every command).
    The argument has a metavar: without one, argparse lists the choices while it builds the parser."""

    def _names(self) -> list:
        from tpslab.synthetic import PRESETS

        return sorted(PRESETS)

    def __contains__(self, name) -> bool:
        return name in self._names()

    def __iter__(self):
        return iter(self._names())


def _mini_arguments(p: argparse.ArgumentParser, preset_help: str, seed_help: str) -> None:
    """--preset and --seed: which mini dataset (the presets come from tpslab.synthetic)."""
    p.add_argument("--preset", choices=_PresetNames(), default="default", metavar="PRESET",
                   help=f"{preset_help}: %(choices)s (default: %(default)s)")
    p.add_argument("--seed", type=_whole_number(0), default=0, help=f"{seed_help} (default: %(default)s)")


def _build_parser() -> argparse.ArgumentParser:
    from tpslab import __version__

    parser = _Parser(
        prog="tpslab",
        description="Kinetics-TPS tools: build the mini dataset, index and validate annotations, "
        "check and extract video frames, check and score submissions.",
        epilog="A bad argument or input is one line on stderr (tpslab COMMAND: error: ...) and exit status 2; "
        f"set {TRACEBACK_ENV}=1 to see where it came from.",
    )
    parser.add_argument("--version", action="version", version=f"tpslab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("mini", help="generate the embedded mini dataset (release layout)",
                       description="Generate the mini dataset. Without OUT it is made once in the "
                       "cache folder ($TPSLAB_CACHE or ~/.cache/tpslab) and reused; its path is printed. "
                       "OUT must be new or empty, or hold the dataset of the same preset and seed that "
                       "`tpslab mini` wrote there before (it is then reused as it is); anything else in OUT is "
                       "refused, never overwritten.")
    p.add_argument("out", nargs="?", help="folder to write the dataset root into (default: the cache)")
    _mini_arguments(p, "dataset size", "random seed, >= 0")
    _quiet_argument(p)
    p.set_defaults(func=_cmd_mini)

    p = sub.add_parser("index", help="build (or refresh) the annotation index of a release",
                       description="Parse every annotation file of ROOT in parallel and cache the tables as "
                       "parquet in ROOT/.tpslab (or in the cache folder when ROOT is read-only).")
    _root_argument(p)
    p.add_argument("--workers", type=_whole_number(1), default=None, help="worker processes (default: all cores)")
    p.add_argument("--rebuild", action="store_true", help="ignore an existing cache")
    _quiet_argument(p)
    p.set_defaults(func=_cmd_index)

    p = sub.add_parser("validate", help="list every problem of a release, with its file",
                       description="Check annotations, list files, flists and videos of ROOT. Prints one line "
                       "per problem and a summary; exits 1 when there are errors (or warnings with --strict).")
    _root_argument(p)
    p.add_argument("--no-video-probe", action="store_true",
                   help="do not read video headers (skips the boxes-inside-the-image check)")
    p.add_argument("--strict", action="store_true", help="warnings count as errors for the exit code")
    p.add_argument("--max", type=_whole_number(0), default=None, metavar="N", help="print at most N problems")
    _quiet_argument(p)
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("check-videos", help="decoded frame counts against the flist and the annotations",
                       description="Per video: the frames the file shows (edit lists honoured, truncation "
                       "detected) against the flist count and the highest annotated frame. Prints the "
                       "mismatches, unreadable files and a summary; exits 1 when anything is off.")
    _root_argument(p)
    p.add_argument("--decode", action="store_true", help="decode every frame too (slow; catches damaged data)")
    _workers_argument(p)
    _max_videos_argument(p)
    _quiet_argument(p)
    p.set_defaults(func=_cmd_check_videos)

    p = sub.add_parser("extract-frames", help="decode videos to OUT/<split>/<class>/<video>/img_%%05d.jpg",
                       usage="tpslab extract-frames [ROOT] --out OUT [options]\n"
                       "       tpslab extract-frames ROOT OUT [options]",
                       description="Extract every video's frames as JPEG, numbered from img_00001.jpg as the "
                       "release's annotations are (mmaction2 rawframes layout). Each folder records how it was "
                       "made (.tpslab-frames.json: settings, the video's size and time, every frame written). "
                       "Resumable: a folder is kept only when its record matches and its frames are whole; "
                       "empty, short, damaged or outdated ones are redone and reported. Folders made with "
                       "other settings, or holding frames edited since, are refused unless --replace; folders holding frame files tpslab did not "
                       "write are refused and left untouched; other files in them (notes.txt) are kept. "
                       "Partial folders of killed runs are removed. Each video's count is checked against the "
                       "flist. Exits 1 when a video could not be read or a folder was refused, 2 on bad "
                       "arguments or an unwritable OUT.")
    _root_argument(p)
    p.add_argument("out", nargs="?", metavar="OUT", help="folder to write the frames into (or --out)")
    p.add_argument("--out", dest="out_option", metavar="OUT",
                   help="folder to write the frames into, with ROOT optional")
    p.add_argument("--videos", metavar="FILE", help="extract only the videos named in FILE (one per line, "
                   "# comments); a name that is not a video of ROOT is an error")
    p.add_argument("--short-side", type=int, default=None, metavar="N",
                   help="resize so the shorter side is N pixels, N >= 1 (default: keep the size)")
    p.add_argument("--quality", type=int, default=None, metavar="Q",
                   help="JPEG quality, 1-100 (default: 95, OpenCV's and so mmaction2's)")
    p.add_argument("--replace", action="store_true",
                   help="re-extract folders made with other settings or holding frames edited since they "
                   "were written (default: refuse them)")
    _workers_argument(p)
    _max_videos_argument(p)
    _quiet_argument(p)
    p.set_defaults(func=_cmd_extract_frames)

    p = sub.add_parser("evaluate", help="the official Kinetics-TPS score of a submission",
                       description="Score PRED (a folder with pred_vid_result.json and pred_part_result.json, "
                       "or the submission zip) against GT_DIR (gt_vid_result.json and gt_part_result.json), "
                       "exactly as the challenge scorer. Prints area, accuracy and mean PSC. Exits 2, without "
                       "scoring, on input the scorer cannot score (the message names the first offending video "
                       "and frame; `tpslab check-submission` lists them all), on a submission written in the other "
                       "mode, and on class, part or state names outside the vocabulary and the ground truth "
                       "(listed with suggestions), unless --allow-unknown-names.")
    p.add_argument("gt_dir", help="folder with gt_vid_result.json and gt_part_result.json")
    p.add_argument("pred", help="submission folder or zip")
    _mode_argument(p)
    p.add_argument("--pairing", choices=["matched", "pre-fix-2021"], default="matched",
                   help="matched: each GT human against the prediction it was matched to, as the public "
                   "scripts' current revisions (2021 since commit 4cd5815 of 2021-06-13, and 2022); "
                   "pre-fix-2021: the 2021 script before that fix (the k-th match against the k-th predicted "
                   "human), only to reproduce scores computed before June 2021 (default: %(default)s)")
    p.add_argument("--human-iou", type=float, default=0.5, help="human IoU threshold (default: %(default)s)")
    p.add_argument("--part-iou", type=float, default=0.3, help="part IoU threshold (default: %(default)s)")
    p.add_argument("--grid", action="store_true", help="also the 5x5 grid of IoU thresholds the official "
                   "script prints")
    p.add_argument("--json", action="store_true", help="print one JSON object (area, accuracy, mean_psc, ...)")
    _allow_unknown_names_argument(p)
    _max_bytes_argument(p)
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("check-submission", help="check a submission and print the validation report",
                       description="Check PRED (a folder with pred_vid_result.json and pred_part_result.json, or "
                       "the submission zip) against the format, the limits (10 humans a frame, 5 proposals a part), "
                       "the vocabulary and, with --gt, the coverage of the ground truth; warns about a key held twice in a "
                       "file (JSON readers keep the last): a video, a frame, its humans and, where the compiled reader "
                       "reads the file, a part or a box inside a human. Prints the report (errors "
                       "and warnings grouped, with where they are); exits 0 when it has no error, 1 when it has, "
                       "2 when PRED cannot be read.")
    p.add_argument("pred", help="submission folder or zip")
    p.add_argument("--gt", dest="gt_dir", metavar="GT_DIR",
                   help="folder with gt_vid_result.json and gt_part_result.json: also check coverage")
    _mode_argument(p)
    p.add_argument("--max", type=_whole_number(0), default=5, metavar="N",
                   help="places shown for each kind of problem (default: %(default)s)")
    _allow_unknown_names_argument(p)
    _max_bytes_argument(p)
    p.set_defaults(func=_cmd_check_submission)

    p = sub.add_parser("export-gt", help="write gt_vid_result.json and gt_part_result.json for some videos",
                       description="Export the evaluation ground truth (scored frames 1, 6, 11, ...) of a set "
                       "of train-split videos of ROOT: those listed in a file, or a seeded train/val split. A file "
                       "of those names in OUT that tpslab did not write there is refused and left untouched.")
    _root_argument(p)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--videos", metavar="FILE", help="UTF-8 file with one video name per line (# comments)")
    which.add_argument("--split", choices=["train", "val"], help="one side of split_train_val")
    _split_arguments(p)
    p.add_argument("--out", required=True, help="folder to write the two files into (made if missing)")
    _quiet_argument(p)
    p.set_defaults(func=_cmd_export_gt)

    p = sub.add_parser("export-coco", help="persons and body parts of annotated frames as a COCO detection file",
                       usage="tpslab export-coco [ROOT] FRAMES --out FILE.json [options]",
                       description="Write the persons and the 10 body parts of every annotated frame as COCO "
                       "(images, annotations, categories) to train a detector: file_name is the frame's JPEG "
                       "relative to FRAMES (the folder of tpslab extract-frames), width and height are read from "
                       "it, and boxes are scaled when the frames were resized (--short-side). bbox [x, y, w, h] = "
                       "[x1, y1, x2 - x1 + 1, y2 - y1 + 1] at the video's size (the release's corners are inclusive "
                       "pixels). Parts carry person_id, state, object and object_bbox. An existing --out is "
                       "overwritten only when tpslab export-coco wrote it. Exits 2 on bad input (a frame missing "
                       "from FRAMES unless --skip-missing, a 0-based frame folder, frames whose size cannot be checked "
                       "against their video, nothing to export: only test videos, or every frame skipped).")
    _root_argument(p)
    p.add_argument("frames", metavar="FRAMES", help="rawframes folder made by tpslab extract-frames")
    p.add_argument("--out", required=True, metavar="FILE.json", help="COCO JSON file to write")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--split", choices=["train", "val", "all"], default="all",
                       help="videos: one side of split_train_val, or all annotated videos (default: %(default)s)")
    which.add_argument("--videos", metavar="FILE", help="UTF-8 file with one video name per line (# comments)")
    _split_arguments(p)
    p.add_argument("--skip-missing", action="store_true",
                   help="leave out annotated frames that FRAMES lacks (a video not extracted, or a folder ending "
                   "before the frame; counted in the summary) instead of refusing")
    _workers_argument(p, "worker processes reading frame and video sizes")
    _quiet_argument(p)
    p.set_defaults(func=_cmd_export_coco)

    p = sub.add_parser("export-lists", help="MMAction2 and PySlowFast annotation lists of the train/val/test videos",
                       usage="tpslab export-lists [ROOT] [--frames FRAMES] --out DIR [options]",
                       description="Write into DIR: classes.txt (one action per line, line i = action id i), "
                       "<split>_list_videos.txt (MMAction2 VideoDataset: 'path label', path relative to ROOT), "
                       "<split>.csv (the same lines, PySlowFast's Kinetics loader) and, with --frames, "
                       "<split>_list_rawframes.txt (MMAction2 RawframeDataset: 'frame_dir total_frames label', "
                       "frame_dir relative to FRAMES) for split train and val (split_train_val, as elsewhere in "
                       "tpslab) and test. Test videos get their class folder's action id (the release files them "
                       "by class), or -1 with --hide-test-labels. A file in DIR that tpslab did not write is "
                       "never overwritten. Exits 2 on bad input.")
    _root_argument(p)
    p.add_argument("--frames", metavar="FRAMES",
                   help="rawframes folder made by tpslab extract-frames: also write the rawframe lists")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write the lists into (made if missing)")
    p.add_argument("--val-fraction", type=_fraction, default=0.25,
                   help="share of each class's train videos in val, strictly between 0 and 1 (default: %(default)s)")
    p.add_argument("--seed", type=_whole_number(0), default=0, help="seed of the split, >= 0 (default: %(default)s)")
    p.add_argument("--hide-test-labels", action="store_true", help="write -1 as every test video's label")
    p.add_argument("--skip-missing", action="store_true",
                   help="leave out videos without a video file or frame folder instead of refusing")
    _workers_argument(p, "worker processes counting frames")
    _quiet_argument(p)
    p.set_defaults(func=_cmd_export_lists)

    p = sub.add_parser("train-recognizer", help="train the part-state recogniser (and the pipeline) into a run folder",
                       usage="tpslab train-recognizer [ROOT] --out RUN [options]\n"
                       "       torchrun --nproc_per_node N -m tpslab train-recognizer [ROOT] --out RUN [options]",
                       description="Train the pixel part-state recogniser on the annotated training videos of ROOT "
                       "(a seeded --val-fraction of them held out for validation), reading part crops on demand "
                       "(memory does not grow with the data). Writes RUN/model.pt (the recogniser), "
                       "RUN/checkpoint.pt after every epoch, RUN/metrics.jsonl (loss, state top-1, mean-class "
                       "accuracy, crops/s per epoch), and the rest of the end-to-end pipeline for `tpslab predict`: "
                       "RUN/classifier.joblib (a compositional classifier on ground-truth part-state bags of the "
                       "same training videos) and RUN/pipeline.json. RUN must be new or empty; --resume continues "
                       "the run in RUN and ends with the weights an uninterrupted run would have. Under torchrun "
                       "the processes share each global batch of --batch-size crops (gloo on CPU, NCCL on GPUs); "
                       "only rank 0 writes. Exits 2 on bad input.")
    _root_argument(p)
    p.add_argument("--out", required=True, metavar="RUN", help="run folder (new or empty; or the run to --resume)")
    p.add_argument("--epochs", type=_whole_number(1), default=4, help="epochs (default: %(default)s)")
    p.add_argument("--batch-size", type=_whole_number(1), default=128, metavar="B",
                   help="crops per optimiser step, over all processes (default: %(default)s)")
    p.add_argument("--lr", type=_rate, default=3e-3, help="peak learning rate of the one-cycle schedule "
                   "(default: %(default)s)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (under torchrun, cuda is each "
                   "process's GPU) (default: %(default)s)")
    p.add_argument("--workers", type=_whole_number(0), default=0, metavar="W",
                   help="DataLoader worker processes reading crops, per process (default: %(default)s)")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN from its checkpoint")
    p.add_argument("--val-fraction", type=_holdout, default=0.1, metavar="F",
                   help="share of each class's training videos held out for validation, 0 for none "
                   "(default: %(default)s)")
    p.add_argument("--seed", type=_whole_number(0), default=0, help="seed of the split, the model and the sampling "
                   "(default: %(default)s)")
    p.add_argument("--frames", metavar="FRAMES", help="read crops from the full-size rawframes tpslab extract-frames "
                   "wrote into FRAMES (much faster than seeking in videos)")
    p.add_argument("--max-crops", type=_whole_number(1), default=None, metavar="N",
                   help="crops drawn per epoch (default: all)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--balance", choices=["state"], default=None,
                       help="draw crops so that every part state is equally likely")
    which.add_argument("--cap-per-state", type=_whole_number(1), default=None, metavar="K",
                       help="at most K crops of each part state per epoch (a fresh choice each epoch)")
    p.add_argument("--patience", type=_whole_number(1), default=None, metavar="P",
                   help="stop after P epochs without a lower validation loss, keeping the best epoch")
    p.add_argument("--backbone", metavar="MODULE:CALLABLE", default=None,
                   help="a custom feature extractor: a callable returning a torch.nn.Module or a "
                   "tpslab.models.recognizer.Backbone (tpslab never downloads weights)")
    p.add_argument("--threads", type=_whole_number(1), default=None, help="torch CPU threads per process")
    p.add_argument("--quiet", action="store_true", help="no progress bars or epoch lines")
    p.set_defaults(func=_cmd_train_recognizer)

    p = sub.add_parser("predict", help="end-to-end predictions of a trained run on detected boxes, as a submission zip",
                       usage="tpslab predict [ROOT] RUN --boxes DETECTIONS --out SUBMISSION.zip [options]\n"
                       "       torchrun --nproc_per_node N -m tpslab predict [ROOT] RUN --boxes DETECTIONS "
                       "--out SUBMISSION.zip",
                       description="Run the pipeline of RUN (made by tpslab train-recognizer: the recogniser, then "
                       "the compositional classifier on the predicted part states) on the human and part boxes of "
                       "DETECTIONS (a file in the prediction format: pred_part_result.json, or a submission folder "
                       "or zip; its verbs are ignored, and a part with several proposals gives its first box; "
                       "keys it holds twice get a note) for the videos of ROOT, and write the submission zip (scored "
                       "frames: detections on other frames are predicted and left out, with a note saying how "
                       "many; a video with none on a scored frame is refused). Under torchrun each process reads "
                       "its share of the videos and rank 0 writes the zip; the predictions are those of a single "
                       "process. Exits 2 on bad input.")
    _root_argument(p)
    p.add_argument("run", metavar="RUN", help="run folder of tpslab train-recognizer")
    p.add_argument("--boxes", required=True, metavar="DETECTIONS", help="detections in the prediction format")
    p.add_argument("--out", required=True, metavar="SUBMISSION.zip", help="the submission zip to write (must not "
                   "exist)")
    p.add_argument("--videos", metavar="FILE", help="predict only the videos named in FILE (one per line, # comments)")
    p.add_argument("--frames", metavar="FRAMES", help="read crops from the full-size rawframes in FRAMES")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: %(default)s)")
    p.add_argument("--workers", type=_whole_number(0), default=0, metavar="W",
                   help="DataLoader worker processes reading crops, per process (default: %(default)s)")
    p.add_argument("--batch-size", type=_whole_number(1), default=1024, metavar="B",
                   help="at most B part boxes per batch (one video per batch) (default: %(default)s)")
    p.add_argument("--backbone", metavar="MODULE:CALLABLE", default=None,
                   help="the custom backbone RUN was trained with (its architecture; the weights are RUN's)")
    p.add_argument("--threads", type=_whole_number(1), default=None, help="torch CPU threads per process")
    p.add_argument("--overwrite", action="store_true",
                   help="replace SUBMISSION.zip if it exists and tpslab wrote it (never another file, nor --boxes)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("competition", help="write a Codabench/CodaLab competition bundle on the mini dataset",
                       description="Write into OUT (new or empty) a competition for a class on the test videos of "
                       "the mini dataset, for a self-hosted Codabench (or CodaLab) server: bundle.zip to upload "
                       "(competition.yaml, pages, the scoring program: tpslab's scorer reading INPUT/ref and "
                       "INPUT/res and writing OUTPUT/scores.json and scores.txt), reference_data/ (the test videos' "
                       "labels, from the generator: the teacher's only) and starting_kit/ for learners (the test "
                       "videos, a simulated detector's boxes of them, a baseline and its submission). The same arguments "
                       "(with --start) make the same bundle.zip, byte for byte. Exits 2 on bad input.")
    p.add_argument("out", metavar="OUT", help="folder to write the bundle into (new or empty)")
    _mini_arguments(p, "the mini dataset's size", "the mini dataset's seed")
    p.add_argument("--jitter", type=_share, default=0.2,
                   help="the simulated detector moves box sides by this share of the box size (default: %(default)s)")
    p.add_argument("--drop", type=_share, default=0.05,
                   help="the simulated detector misses this share of the boxes (default: %(default)s)")
    p.add_argument("--start", type=_iso_date, default=None, metavar="YYYY-MM-DD",
                   help="start date of the competition's phase (default: today)")
    p.set_defaults(func=_cmd_competition)

    return parser


def _root_argument(p) -> None:
    p.add_argument("root", nargs="?", help="Kinetics-TPS root (default: $TPSLAB_DATA, else the mini dataset)")


def _workers_argument(p, what: str = "worker processes") -> None:
    p.add_argument("--workers", type=_whole_number(1), default=os.cpu_count() or 1, help=f"{what} (default: all cores)")


def _max_videos_argument(p) -> None:
    p.add_argument("--max", type=_whole_number(0), default=50, metavar="N", help="print at most N videos (default: 50)")


def _allow_unknown_names_argument(p) -> None:
    p.add_argument("--allow-unknown-names", action="store_true",
                   help="class, part or state names outside the vocabulary and the ground truth never score: "
                   "evaluate refuses them and check-submission counts them as errors, unless this is given "
                   "(then: warnings, and evaluate scores anyway)")


# challenge.MODES and challenge.PAIRINGS, spelled out: the parser imports no library module (`tpslab --help`
# stays instant); test_cli checks they agree.
def _mode_argument(p) -> None:
    p.add_argument("--mode", choices=["list", "single"], default="list",
                   help="list: up to 5 box/verb proposals per part (the 2021 script, xiadingZ); single: one "
                   "box and one verb per part (the 2022 script, Andy1621, scored with its asserts off) "
                   "(default: %(default)s)")


def _quiet_argument(p) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _split_arguments(p) -> None:
    """The options of ``--split`` (split_train_val's)."""
    p.add_argument("--val-fraction", type=_fraction, default=0.25,
                   help="for --split, strictly between 0 and 1 (default: %(default)s)")
    p.add_argument("--seed", type=_whole_number(0), default=0, help="for --split, >= 0 (default: %(default)s)")


def _max_bytes_argument(p) -> None:
    p.add_argument("--max-bytes", type=_whole_number(1), default=None, metavar="N",
                   help="refuse a submission whose two files hold more than N bytes (inflated); default: the "
                   "largest test-set submission the limits allow, tpslab.submission.MAX_SUBMISSION_BYTES (1.6 GiB)")


def _is_input_error(e: BaseException) -> bool:
    """Whether ``e`` means bad input (one line for the user) rather than a bug (a traceback)."""
    if isinstance(e, (OSError, ValueError)):
        return True
    from tpslab.video import VideoError
    from tpslab.vocab import UnknownNameError

    return isinstance(e, (UnknownNameError, VideoError))


def main(argv=None) -> int:
    """Run one command; returns the exit status (0 ok, 1 the command found problems, 2 bad input)."""
    try:
        args = _build_parser().parse_args(argv)
    except SystemExit as e:  # --help, --version, usage errors (already printed)
        return e.code if isinstance(e.code, int) else 0 if e.code is None else 2
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except MemoryError:
        _traceback_if_asked()
        print(f"tpslab {args.command}: error: out of memory; with large inputs, pass fewer --workers where the command "
              "has them", file=sys.stderr)
        return 2
    except Exception as e:
        if not _is_input_error(e):
            raise  # a bug: Python prints the traceback, exit status 1
        _traceback_if_asked()
        print(f"tpslab {args.command}: error: {printable(_one_line(e))}", file=sys.stderr)
        return 2


def _traceback_if_asked() -> None:
    """With ``TPSLAB_TRACEBACK`` set (to anything but ``0``), print the traceback of the error being handled: where
    an expected error came from, before its line; the exit status stays the same."""
    if os.environ.get(TRACEBACK_ENV, "0") not in ("", "0"):
        import traceback

        traceback.print_exc(file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
