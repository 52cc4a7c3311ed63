#!/usr/bin/env python3
"""train_check.py OUT — the model-training check of the dataset card: a
baseline trained on the first two windows of campaign_metrics and scored on
the third, the way docs/datasets.md tells the ML team to use rows of mixed
granularity. It prints one JSON document:

  {"train_windows": [...], "test_window": "...", "train_rows": N, "test_rows": N,
   "features": [...], "level_features": [...],
   "wmae_model": x, "wmae_mean": y}

The target is each row's click-through rate (clicks / impressions), weighted
by impressions. The features are, per dimension, one indicator per value
seen in training (a generalized value such as "*" or a parent is a value of
its own) and the dimension's level (`<dimension>_level`), so the model can
tell a country from a continent. It is weighted ridge regression with numpy
— no score is tuned: the check is that the rows can be used as they are.
"""
import json
import math
import sys

import numpy
import pandas

RIDGE = 10.0
DIMENSIONS = ["platform", "content_type", "industry", "region", "follower_tier"]


def main(out):
    rows = pandas.read_parquet(out + "/datasets/campaign_metrics")
    rows = rows[rows["impressions"] > 0].copy()
    windows = sorted(rows["window_start"].unique())
    if len(windows) < 3:
        sys.exit("train_check.py: need three windows, found %d" % len(windows))
    train = rows[rows["window_start"].isin(windows[:2])]
    test = rows[rows["window_start"] == windows[2]]
    levels = [d + "_level" for d in DIMENSIONS]
    missing = [c for c in levels if c not in rows.columns]
    if missing:
        sys.exit("train_check.py: the rows lack %s" % ", ".join(missing))

    features = []
    for d in DIMENSIONS:
        for v in sorted(str(x) for x in train[d].astype(str).unique()):
            features.append((d, v))

    def design(frame):
        cols = [numpy.ones(len(frame))]
        for d, v in features:
            cols.append((frame[d].astype(str) == v).to_numpy(dtype=float))
        for c in levels:
            cols.append(frame[c].to_numpy(dtype=float))
        return numpy.column_stack(cols)

    def target(frame):
        return (frame["clicks"] / frame["impressions"]).to_numpy(dtype=float)

    # Weighted ridge regression: a small penalty keeps the indicators of
    # values seen in few rows from fitting noise.
    x, y = design(train), target(train)
    w = train["impressions"].to_numpy(dtype=float)
    w = w / w.mean()
    xtw = x.T * w
    penalty = RIDGE * numpy.eye(x.shape[1])
    penalty[0, 0] = 0  # not the intercept
    coef = numpy.linalg.solve(xtw @ x + penalty, xtw @ y)
    w_test = test["impressions"].to_numpy(dtype=float)
    pred = design(test) @ coef
    mean = numpy.average(target(train), weights=train["impressions"].to_numpy(dtype=float))
    wmae_model = float(numpy.average(numpy.abs(pred - target(test)), weights=w_test))
    wmae_mean = float(numpy.average(numpy.abs(mean - target(test)), weights=w_test))
    for x in (wmae_model, wmae_mean):
        if not math.isfinite(x):
            sys.exit("train_check.py: the score is not finite")
    json.dump({
        "train_windows": [str(w) for w in windows[:2]], "test_window": str(windows[2]),
        "train_rows": int(len(train)), "test_rows": int(len(test)),
        "features": ["%s=%s" % f for f in features], "level_features": levels,
        "wmae_model": wmae_model, "wmae_mean": wmae_mean,
    }, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: train_check.py OUT")
    main(sys.argv[1])
