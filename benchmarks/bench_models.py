"""Every model of tpslab.models, trained and evaluated on the mini dataset's seeded train/val split.

Measured in one run (validation videos of ``split_train_val(0.25, seed)``; baselines in the same run):

- action accuracy from ground-truth part states (the oracle): logistic regression on state bags,
  a random forest and nearest neighbours on the same bags, logistic regression with objects,
  pyramid and transitions; the temporal models (GRU, transformer in the full run) on per-frame
  sequences; against the most frequent class;
- the part ablation (each left/right pair or single part removed, then each kept alone);
- part states from pixels (GT boxes): top-1 and mean-class accuracy, with and without temporal
  smoothing and the video-level state; against the per-part majority state;
- action accuracy from the predicted part states, and the official score of the end-to-end pipeline
  against the majority baseline (the per-(action, part) majority state on the same boxes and actions).

Default data: the embedded mini dataset (``default`` preset, generated on first use); ``--root`` for
another release. ``--quick`` trains less (fewer epochs, a third of the training crops) to finish in
under a minute. Last line: ``oracle_acc=A state_top1=B e2e_score=C majority_score=D``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="less training: finishes in under a minute")
    parser.add_argument("--root", help="dataset root (default: the embedded mini dataset, default preset)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and of every model")
    parser.add_argument("--device", default="cpu", help="torch device for the torch models (cpu, cuda)")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads for torch and BLAS (1 is fastest on a busy machine)")
    args = parser.parse_args(argv)
    # threadpoolctl limits only the thread pools already loaded: load BLAS/OpenMP users first.
    import sklearn.ensemble  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    with threadpool_limits(args.threads):
        return run(args)


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def run(args) -> int:
    import tpslab
    from tpslab.metrics.classification import part_state_metrics
    from tpslab.models._common import video_labels
    from tpslab.models.baselines import MajorityBaseline
    from tpslab.models.compositional import CompositionalClassifier, FeatureConfig
    from tpslab.pipeline import (EndToEnd, boxes_from_dataset, majority_predictions, part_ablation,
                                        score_predictions)
    from tpslab.models.recognizer import PartStateRecognizer, smooth_probs, video_paths
    from tpslab.models.temporal import TemporalClassifier

    t_start = time.perf_counter()
    if args.root is None:
        from tpslab.synthetic import ensure_mini

        root = ensure_mini("default", seed=0, progress=False)
    else:
        root = args.root
    ds = tpslab.load_dataset(root, progress=False)
    train, val = ds.split_train_val(0.25, seed=args.seed)
    labels = video_labels(ds)
    train_labels = {v: labels[v] for v in train}
    val_truth = np.asarray([labels[v] for v in val], dtype=object)
    parts, vocab = ds.parts, ds.vocab
    video_of = parts["video"].astype(str)
    train_rows = np.flatnonzero(video_of.isin(set(train)).to_numpy())
    print(f"{root}: {len(train)} train / {len(val)} validation videos, {len(parts)} part rows"
          f"{' (quick)' if args.quick else ''}")
    rows = []

    def add(section, model, metric, value, baseline=None, train_s=None):
        rows.append({"section": section, "model": model, "metric": metric, "value": value,
                     "baseline": baseline, "train_s": train_s})

    def accuracy(pred: dict) -> float:
        return float(np.mean([pred[v] == labels[v] for v in val]))

    # ------------------------------------------------------------- actions from ground-truth states
    most_frequent = pd.Series(train_labels).value_counts().index[0]
    chance = float(np.mean(val_truth == most_frequent))
    logreg, t = _timed(lambda: CompositionalClassifier("logreg", seed=args.seed).fit_parts(parts, train_labels, vocab))
    oracle_acc = accuracy(logreg.predict_parts(parts, videos=val))
    add("action from GT states", "logistic regression (state bags)", "accuracy", oracle_acc, chance, t)
    others = [("random forest (state bags)", "forest", FeatureConfig()),
              ("nearest neighbours (state bags)", "knn", FeatureConfig())]
    if not args.quick:
        others.append(("logistic regression (+objects, pyramid, transitions)", "logreg",
                       FeatureConfig(objects=True, pyramid=True, transitions=True)))
    for name, model, config in others:
        clf, t = _timed(lambda: CompositionalClassifier(model, config=config, seed=args.seed)
                        .fit_parts(parts, train_labels, vocab))
        add("action from GT states", name, "accuracy", accuracy(clf.predict_parts(parts, videos=val)), chance, t)
    for kind in ("gru",) if args.quick else ("gru", "transformer"):
        temporal = TemporalClassifier(kind, epochs=15 if args.quick else 40, seed=args.seed, device=args.device,
                                      threads=args.threads, progress=not args.quick)
        temporal, t = _timed(lambda: temporal.fit_parts(parts, train_labels, vocab, videos=train))
        acc = temporal.score(temporal.sequences(parts, videos=val), labels)
        add("action from GT states", f"temporal {kind} (frame sequences)", "accuracy", acc, chance, t)

    # ------------------------------------------------------------- part ablation
    seeds = [args.seed] if args.quick else [args.seed, args.seed + 1, args.seed + 2]
    splits = [ds.split_train_val(0.25, seed=s) for s in seeds]
    ablations = {}
    for groups, mode in ([("pairs", "drop")] if args.quick else
                         [("pairs", "drop"), ("parts", "drop"), ("pairs", "keep")]):
        ablations[(groups, mode)], t = _timed(lambda: part_ablation(parts, labels, vocab, splits, groups=groups,
                                                                   mode=mode, seed=args.seed,
                                                                   progress=not args.quick))
        add("part ablation", f"{mode} {groups} ({len(splits)} split(s))", "seconds", t)

    # ------------------------------------------------------------- part states from pixels
    recognizer = PartStateRecognizer(epochs=2 if args.quick else 4, max_crops=10000 if args.quick else 20000,
                                     seed=args.seed, device=args.device, threads=args.threads,
                                     progress=not args.quick)
    fit_rows = train_rows
    if args.quick:  # a third of the training videos' crops
        fit_videos = set(sorted(train)[::3])
        fit_rows = train_rows[video_of.iloc[train_rows].isin(fit_videos).to_numpy()]
    paths = video_paths(ds)
    train_boxes = parts.iloc[fit_rows]
    train_crops, t_crop_train = _timed(lambda: recognizer.crops(train_boxes, paths, progress=not args.quick))
    val_boxes, val_frames = boxes_from_dataset(ds, val)
    has_part = val_boxes["part"].notna().to_numpy()
    val_crops, t_crop_val = _timed(lambda: recognizer.crops(val_boxes[has_part], paths, progress=not args.quick))
    add("pixels", f"cropping {len(train_crops) + len(val_crops)} parts", "seconds", t_crop_train + t_crop_val)
    _, t = _timed(lambda: recognizer.fit(train_crops, train_boxes, vocab))
    val_parts = val_boxes[has_part]
    probs = recognizer.predict_proba(val_crops, val_parts)
    truth = val_parts["state"].astype(str).to_numpy()
    prior = parts.iloc[train_rows].groupby("part", observed=True)["state"].agg(
        lambda s: s.astype(str).value_counts().index[0])
    prior_top1 = float(np.mean(val_parts["part"].astype(str).map(prior).to_numpy() == truth))

    def state_metrics(p):
        table = pd.DataFrame({"part": val_parts["part"].astype(str).to_numpy(), "gt_state": truth,
                              "pred_state": recognizer.states_of(p)})
        return part_state_metrics(table).summary()

    m = state_metrics(probs)
    state_top1 = m["accuracy"]
    add("pixels", f"CNN recogniser ({recognizer.loss} loss)", "state top-1", state_top1, prior_top1, t)
    add("pixels", f"CNN recogniser ({recognizer.loss} loss)", "state mean-class", m["mean_state_accuracy"])
    smoothing = [(1, 0.0), (0, 0.5)] if args.quick else [(1, 0.0), (2, 0.0), (0, 0.5), (0, 1.0)]
    for window, level in smoothing:
        sm = state_metrics(smooth_probs(val_parts, probs, window=window, video_level=level))
        add("pixels", f"+ smoothing window={window} video_level={level}", "state top-1", sm["accuracy"], prior_top1)
    per_part = part_state_metrics(pd.DataFrame({"part": val_parts["part"].astype(str).to_numpy(), "gt_state": truth,
                                                "pred_state": recognizer.states_of(probs)})).per_part
    variants = [] if args.quick else [("ce loss", {"loss": "ce"}), ("focal loss", {"loss": "focal"}),
                                      ("weighted loss, pixels only: no box geometry", {"geometry": False})]
    for name, options in variants:
        other = PartStateRecognizer(epochs=4, max_crops=20000, seed=args.seed, device=args.device,
                                    threads=args.threads, progress=True, **options)
        _, t = _timed(lambda: other.fit(train_crops, train_boxes, vocab))
        table = pd.DataFrame({"part": val_parts["part"].astype(str).to_numpy(), "gt_state": truth,
                              "pred_state": other.predict(val_crops, val_parts)})
        mo = part_state_metrics(table).summary()
        add("pixels", f"CNN recogniser ({name})", "state top-1", mo["accuracy"], prior_top1, t)
        add("pixels", f"CNN recogniser ({name})", "state mean-class", mo["mean_state_accuracy"])
    if not args.quick:  # how much the boxes alone tell, without pixels
        from sklearn.ensemble import HistGradientBoostingClassifier

        from tpslab.models.recognizer import box_geometry

        def geometry(boxes):
            onehot = np.eye(len(vocab.parts))[vocab.parts.ids(boxes["part"].astype(str))]
            return np.hstack([box_geometry(boxes), onehot])

        gbm = HistGradientBoostingClassifier(max_iter=100, random_state=args.seed)
        all_train = parts.iloc[train_rows]
        _, t = _timed(lambda: gbm.fit(geometry(all_train), all_train["state"].astype(str).to_numpy()))
        add("pixels", "no pixels: part + box geometry (gradient boosting)", "state top-1",
            float(np.mean(gbm.predict(geometry(val_parts)) == truth)), prior_top1, t)

    # ------------------------------------------------------------- end to end
    pipeline = EndToEnd(recognizer, logreg)
    pred, t = _timed(lambda: pipeline.predict(val_boxes, frames=val_frames, crops=val_crops, progress=False))
    add("actions from predicted states", "logistic regression, hard counts", "accuracy", accuracy(pred.actions),
        chance)
    soft = EndToEnd(recognizer, logreg, counts="soft").predict(val_boxes, frames=val_frames, crops=val_crops,
                                                               progress=False)
    add("actions from predicted states", "logistic regression, soft counts", "accuracy", accuracy(soft.actions),
        chance)
    e2e, t_score = _timed(lambda: score_predictions(pred, ds, val))
    majority = MajorityBaseline().fit(parts, train_labels, vocab)
    base = score_predictions(majority_predictions(majority, val_boxes, pred.actions, val_frames), ds, val)
    oracle_boxes = majority_predictions(majority, val_boxes, labels, val_frames)
    add("official score (GT boxes)", "end to end: pixels -> states -> action", "score", e2e.area, base.area)
    add("official score (GT boxes)", "end to end", "mean PSC", e2e.mean_psc, base.mean_psc)
    add("official score (GT boxes)", "majority baseline (same actions)", "score", base.area)
    add("official score (GT boxes)", "majority baseline with the true actions", "score",
        score_predictions(oracle_boxes, ds, val).area)

    # ------------------------------------------------------------- report
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 160, "display.max_colwidth", 60, "display.float_format", "{:.3f}".format):
        print(table.astype(object).where(table.notna(), "").to_string(index=False))
        print("\nstate top-1 of the CNN recogniser per part:")
        print(per_part.to_string(index=False))
        for (groups, mode), ab in ablations.items():
            print(f"\npart ablation, {mode} {groups} (action accuracy, logistic regression on GT state bags):")
            print(ab.to_string(index=False))
    print(f"\noracle accuracy {oracle_acc:.3f} = {oracle_acc / max(chance, 1e-9):.1f}x the most frequent class "
          f"({chance:.3f}); pixel state top-1 {state_top1:.3f} = {state_top1 / prior_top1:.2f}x the per-part "
          f"majority ({prior_top1:.3f}); end-to-end score {e2e.area:.4f} = {e2e.area / max(base.area, 1e-9):.2f}x "
          f"the majority baseline ({base.area:.4f}); scoring took {t_score:.1f} s; "
          f"total {time.perf_counter() - t_start:.1f} s")
    print(f"oracle_acc={oracle_acc:.4f} state_top1={state_top1:.4f} e2e_score={e2e.area:.4f} "
          f"majority_score={base.area:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
