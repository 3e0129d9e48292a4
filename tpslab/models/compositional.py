"""Compositional action classifiers: part-state bags -> action, with scikit-learn.

The features are :mod:`tpslab.features` bags of a video's part states (from ground truth, or soft
counts from predicted state probabilities), optionally with objects, a temporal pyramid and state
transitions (:class:`FeatureConfig`). The default model is a pipeline of standard scaling and a
multinomial logistic regression, whose weights read as votes: ``votes()`` gives, for every
``part:state=...`` column and action, how strongly one standard deviation more of that part state
pushes the video towards the action. ``model="forest"`` (a random forest) and ``model="knn"`` are
other models on the same features; any scikit-learn classifier can be passed instead of a name.

Saved models are joblib (pickle) files: load only files you trust.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from tpslab.features import Features, state_bags, transition_counts
from tpslab.fileio import atomic_path
from tpslab.models._common import (PartsClassifier, check_actions, check_names, labels_for, read_saved, saved_data,
                                   vocab_from_names)
from tpslab.vocab import Vocab

MODELS = ("logreg", "forest", "knn")
_KIND = "tpslab.CompositionalClassifier"
_TRANSITION = "transition:"


@dataclass(frozen=True)
class FeatureConfig:
    """Which per-video features to build from a parts table (see :func:`video_features`)."""

    objects: bool = False  # (part, object) bags; needs an ``object`` column (ground truth only)
    pyramid: bool = False  # bags of the video's thirds as well
    transitions: bool = False  # per-part state change counts


def video_features(parts: pd.DataFrame, vocab: Vocab, config: FeatureConfig = FeatureConfig(), *,
                   probs=None, videos: Sequence[str] | None = None) -> Features:
    """Per-video features of ``parts`` (soft counts with ``probs``), in the order of ``videos``.

    Transition columns are prefixed ``transition:`` and cover only the state pairs that occur in
    ``parts``; :meth:`CompositionalClassifier.features` aligns them with a trained model's columns.
    """
    if config.objects and probs is not None:
        raise ValueError("object bags need ground-truth objects; predicted probabilities give states only "
                         "(use FeatureConfig(objects=False))")
    feats = state_bags(parts, vocab, probs=probs, objects=config.objects, pyramid=config.pyramid, videos=videos)
    if config.transitions:
        t = transition_counts(parts, vocab, probs=probs, videos=feats.videos)
        feats = feats.hstack(Features(t.X, t.videos, [_TRANSITION + n for n in t.names]))
    return feats


def align_transitions(feats: Features, names: Sequence[str]) -> Features:
    """``feats`` with its transition columns reordered to ``names``' (absent pairs are zeros).

    A transition pair that did not occur when the model was trained has no weight, so dropping it
    changes no prediction. Every other column must already match.
    """
    names = list(names)
    fixed = [n for n in names if not n.startswith(_TRANSITION)]
    own_fixed = [n for n in feats.names if not n.startswith(_TRANSITION)]
    check_names(fixed, own_fixed)
    pos = {n: i for i, n in enumerate(feats.names)}
    X = np.zeros((len(feats), len(names)), np.float32)
    for j, n in enumerate(names):
        if n in pos:
            X[:, j] = feats.X[:, pos[n]]
    return Features(X, feats.videos, names)


def make_estimator(model: str = "logreg", *, C: float = 1.0, seed: int = 0):
    """The scikit-learn estimator for a model name (see :data:`MODELS`)."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if model == "logreg":
        from sklearn.linear_model import LogisticRegression

        return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=3000, random_state=seed))
    if model == "forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(n_estimators=300, random_state=seed, n_jobs=1)
    if model == "knn":
        from sklearn.neighbors import KNeighborsClassifier

        return make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=3))
    raise ValueError(f"unknown model {model!r}; choose one of {MODELS} or pass a scikit-learn classifier")


class CompositionalClassifier(PartsClassifier):
    """Action from per-video part-state features; see the module docstring.

    ``model``: a name from :data:`MODELS` or an unfitted scikit-learn classifier; ``C`` is the inverse
    regularisation of the logistic regression; ``config`` says which features
    :meth:`fit_parts`/:meth:`predict_parts` build; ``seed`` seeds the estimator. Fitted: ``estimator_``
    (the fitted scikit-learn classifier), ``feature_names_``, ``vocab_`` (the vocabulary it was
    trained with) and ``classes_`` (the actions seen in training).
    """

    def __init__(self, model="logreg", *, C: float = 1.0, config: FeatureConfig = FeatureConfig(), seed: int = 0):
        self.model = model
        self.C = C
        self.config = config
        self.seed = seed

    def __repr__(self) -> str:
        model = self.model if isinstance(self.model, str) else type(self.model).__name__
        return f"CompositionalClassifier(model={model!r}, C={self.C}, config={self.config}, {self._state()})"

    # ------------------------------------------------------------------ features
    def features(self, parts: pd.DataFrame, *, probs=None, videos: Sequence[str] | None = None) -> Features:
        """The features this classifier uses, for a parts table (soft counts with ``probs``).

        On a fitted classifier the vocabulary is the trained one and transition columns are aligned.
        """
        self._check_fitted()
        feats = video_features(parts, self.vocab_, self.config, probs=probs, videos=videos)
        if self.config.transitions:
            feats = align_transitions(feats, self.feature_names_)
        return feats

    # ------------------------------------------------------------------ fitting
    def fit(self, features: Features, labels, vocab: Vocab) -> "CompositionalClassifier":
        """Fit on ``features`` (rows: videos) with ``labels`` (``{video: action}`` or one per row)."""
        from sklearn.base import clone

        y = labels_for(features.videos, labels)
        check_actions(y, vocab, "CompositionalClassifier.fit")
        if len(set(y)) < 2:
            raise ValueError(f"need videos of at least two actions to fit, got {sorted(set(y))}")
        est = make_estimator(self.model, C=self.C, seed=self.seed) if isinstance(self.model, str) else clone(self.model)
        est.fit(features.X, y)
        self.estimator_, self.feature_names_, self.vocab_ = est, list(features.names), vocab
        return self

    def inputs(self, parts: pd.DataFrame, vocab: Vocab, *, probs=None, videos: Sequence[str] | None = None) -> Features:
        """The features :meth:`fit_parts` fits on: :func:`video_features` with this classifier's ``config``."""
        return video_features(parts, vocab, self.config, probs=probs, videos=videos)

    def _X(self, features: Features) -> np.ndarray:
        self._check_fitted()
        check_names(self.feature_names_, features.names)
        return features.X

    # ------------------------------------------------------------------ predicting
    @property
    def classes_(self) -> list[str]:
        self._check_fitted()
        return [str(c) for c in self.estimator_.classes_]

    def predict(self, features: Features) -> np.ndarray:
        """The predicted action name per row."""
        X = self._X(features)
        return np.asarray(self.estimator_.predict(X), dtype=object)

    def predict_proba(self, features: Features) -> pd.DataFrame:
        """Action probabilities, one row per video, one column per action seen in training."""
        X = self._X(features)
        p = self.estimator_.predict_proba(X)
        return pd.DataFrame(p, index=pd.Index(features.videos, name="video"), columns=self.classes_)

    def predict_parts(self, parts: pd.DataFrame, *, probs=None, videos: Sequence[str] | None = None) -> dict[str, str]:
        """``{video: action}`` for the videos of a parts table (soft counts with ``probs``)."""
        feats = self.features(parts, probs=probs, videos=videos)
        return dict(zip(feats.videos, self.predict(feats)))

    def score(self, features: Features, labels) -> float:
        """Accuracy on ``features`` against ``labels`` (``{video: action}`` or one per row)."""
        y = labels_for(features.videos, labels)
        return float(np.mean(self.predict(features) == y))

    # ------------------------------------------------------------------ reading the model
    def votes(self) -> pd.DataFrame:
        """Logistic-regression weights: one row per feature, one column per action.

        A weight is the change of the action's log-odds for one standard deviation more of the
        feature (the pipeline standardises features first); positive weights vote for the action.
        """
        self._check_fitted()
        last = self.estimator_[-1] if hasattr(self.estimator_, "steps") else self.estimator_
        if not hasattr(last, "coef_"):
            raise TypeError(f"votes() needs a linear model with coef_; this one is {type(last).__name__} "
                            "(use importances())")
        coef = last.coef_
        if coef.shape[0] == 1:  # binary: sklearn keeps one row, for the second class
            coef = np.vstack([-coef, coef])
        return pd.DataFrame(coef.T, index=pd.Index(self.feature_names_, name="feature"), columns=self.classes_)

    def top_votes(self, k: int = 5) -> pd.DataFrame:
        """The ``k`` strongest positive votes per action: columns ``action, feature, weight``."""
        v = self.votes()
        rows = [(a, f, float(w)) for a in v.columns for f, w in v[a].nlargest(k).items()]
        return pd.DataFrame(rows, columns=["action", "feature", "weight"])

    def importances(self) -> pd.Series:
        """One importance per feature: mean |weight| over actions (linear) or the forest's impurity importance."""
        self._check_fitted()
        last = self.estimator_[-1] if hasattr(self.estimator_, "steps") else self.estimator_
        if hasattr(last, "feature_importances_"):
            values = last.feature_importances_
        elif hasattr(last, "coef_"):
            values = np.abs(last.coef_).mean(0)
        else:
            raise TypeError(f"{type(last).__name__} has neither coef_ nor feature_importances_")
        return pd.Series(values, index=pd.Index(self.feature_names_, name="feature")).sort_values(ascending=False)

    # ------------------------------------------------------------------ save / load
    def save(self, path) -> Path:
        """Write the fitted classifier with joblib (written to a temporary file, then renamed)."""
        import joblib

        self._check_fitted()
        path = Path(path)
        data = saved_data(_KIND, self.vocab_, estimator=self.estimator_,
                          model=self.model if isinstance(self.model, str) else None, C=self.C,
                          config=asdict(self.config), seed=self.seed, feature_names=self.feature_names_)
        with atomic_path(path) as tmp:
            joblib.dump(data, tmp)
        return path

    @classmethod
    def load(cls, path, vocab: Vocab | None = None) -> "CompositionalClassifier":
        """Read a classifier written by :meth:`save`; ``vocab``, when given, must match the trained one."""
        import joblib

        try:
            saved = joblib.load(path)
        except OSError:
            raise
        except Exception as e:  # a damaged file fails inside pickle in many ways (KeyError, EOFError, ...)
            raise ValueError(f"{path}: cannot read it as a saved classifier ({type(e).__name__}); damaged, or "
                             "not written by tpslab") from e
        data = read_saved(saved, _KIND, path, vocab, "the classifier")
        model = cls(data["model"] or data["estimator"], C=data["C"], config=FeatureConfig(**data["config"]),
                    seed=data["seed"])
        model.estimator_, model.feature_names_ = data["estimator"], data["feature_names"]
        model.vocab_ = vocab_from_names(data["vocab"])
        return model
