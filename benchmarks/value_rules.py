"""Rules that turn a LossVal run's statistics into a value, compared offline.

Fits skval once per (task, noise, seed) and caches what the run observed (the values,
i.e. the LossVal weights, both columns of ``evidence_``, the network's probabilities or
predictions on the training rows, the labels and the noisy mask) in ``--cache``
(``/tmp/skval_value_rules`` by default; never tracked). Then every candidate rule of
``RULES`` is scored on the cache in seconds: AUROC and 2-means F1 per cell (task kind x
noise), and the minority harm on the clean runs of the imbalanced tasks.

Noises: those of the quality benchmark (label, feature, mixed), ``permute`` (labels of a
random 20 % permuted among themselves, classification only) and ``none`` (the clean
run, imbalanced classification tasks only, for the minority harm). The fits use the
estimators' defaults (``data_values_`` are the LossVal weights).

    python benchmarks/value_rules.py [--set dev|confirm] [--seeds N] [--tasks a,b]
        [--fit-only] [--cache DIR]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

if not __package__:
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks._metrics import minority_harm
from benchmarks._tasks import CLF, SETS, TASKS, split_task
from benchmarks.quality import IMBALANCE_RATIO, IMBALANCED, RATES
from skval import LossValClassifier, LossValRegressor
from skval.evaluation import auroc, inject_noise, kmeans_f1

CACHE = Path("/tmp/skval_value_rules")


def _noises(task, y):
    noises = ["label", "feature", "mixed"]
    if task.kind == CLF:
        noises.append("permute")
        counts = np.bincount(y)
        if counts.min() / len(y) <= min(IMBALANCED, IMBALANCE_RATIO / len(counts)):
            noises.append("none")
    return noises


def _fit_one(task, data, noise, seed, path):
    if noise == "none":
        X, y, noisy = data.X, data.y, np.zeros(len(data.y), bool)
    else:
        X, y, noisy = inject_noise(data.X, data.y, kind=noise, rate=RATES[0], task=task.kind,
                                   random_state=seed)
    est_class = LossValClassifier if task.kind == CLF else LossValRegressor
    est = est_class(random_state=seed).fit(X, y)
    out = est.predict_proba(X) if task.kind == CLF else est.predict(X)
    np.savez(path, weights=est.data_values_, evidence=est.evidence_, out=out, y=y,
             noisy=noisy, classification=task.kind == CLF)


def fit_all(names, seeds, cache):
    """Fit and cache every (task, noise, seed) not cached yet."""
    cache.mkdir(parents=True, exist_ok=True)
    for name in names:
        task = TASKS[name]
        for seed in seeds:
            data = split_task(task, seed)
            for noise in _noises(task, data.y):
                path = cache / f"{name}__{noise}__{seed}.npz"
                if not path.exists():
                    _fit_one(task, data, noise, seed, path)
                    print(f"  fitted {path.name}", file=sys.stderr, flush=True)


def load(names, seeds, cache):
    """The cached runs as ``(task, noise, seed, dict)``."""
    for name in names:
        for path in sorted(cache.glob(f"{name}__*.npz")):
            _, noise, seed = path.stem.split("__")
            if int(seed) in seeds:
                with np.load(path) as f:
                    yield name, noise, int(seed), {k: f[k] for k in f.files}


def score(names, seeds, cache, rules):
    """Per rule: ``{(kind, noise): [auroc, f1]}`` means and the clean runs' minority harms."""
    table = {}
    for name, noise, seed, run in load(names, seeds, cache):
        kind = "clf" if run["classification"] else "reg"
        for rule in rules:
            args = (run["weights"], run["evidence"], run["y"], bool(run["classification"]))
            if rule.startswith("gate"):
                args = args + (run["out"],)
            values = VALUE_RULES[rule](*args)
            cell = table.setdefault(rule, {}).setdefault((kind, noise), [])
            if noise == "none":
                cell.append((minority_harm(values, run["y"]), np.nan))
            else:
                cell.append((auroc(values, run["noisy"]), kmeans_f1(values, run["noisy"])))
    return table


def print_table(table):
    cells = sorted({c for rule in table.values() for c in rule})
    print("rule".ljust(14) + "".join(f"{k} {n}".rjust(22) for k, n in cells))
    for rule, by_cell in table.items():
        parts = []
        for c in cells:
            a = np.array(by_cell.get(c, [(np.nan, np.nan)]), float)
            if c[1] == "none":
                parts.append(f"harm max {np.nanmax(a[:, 0]):5.2f} mean {np.nanmean(a[:, 0]):4.2f}")
            else:
                parts.append(f"{np.nanmean(a[:, 0]):.3f} / {np.nanmean(a[:, 1]):.3f}")
        print(rule.ljust(14) + "".join(p.rjust(22) for p in parts))


# ----------------------------------------------------------------------------- rules

def rule_weights(weights, evidence, y, classification):
    """Today's values: the LossVal weights."""
    return weights


def rule_label(weights, evidence, y, classification):
    """Minus the label side."""
    return -evidence[:, 0]


def rule_feature(weights, evidence, y, classification):
    """Minus the feature side."""
    return -evidence[:, 1]


from skval._selection import robust_z  # noqa: E402


def _z(evidence):
    return np.column_stack([robust_z(evidence[:, 0]), robust_z(evidence[:, 1])])


def _squash(z):
    return np.sign(z) * np.log1p(np.abs(z))


def rule_zsum(weights, evidence, y, classification):
    """Minus the sum of the sides' robust z."""
    return -_z(evidence).sum(axis=1)


def rule_squash_sum(weights, evidence, y, classification):
    return -_squash(_z(evidence)).sum(axis=1)


def _between_share(v):
    """Best 2-means split of 1-D ``v``: the between-cluster share of the variance."""
    v = np.sort(v)
    n = len(v)
    c = np.cumsum(v)
    k = np.arange(1, n)
    left, right = c[:-1] / k, (c[-1] - c[:-1]) / (n - k)
    between = k * (n - k) / n * (left - right) ** 2
    total = ((v - v.mean()) ** 2).sum()
    return between.max() / total if total > 0 else 0.0


def _pursuit(s, grid=21):
    alphas = np.linspace(0, 1, grid)
    shares = [_between_share(a * s[:, 0] + (1 - a) * s[:, 1]) for a in alphas]
    return alphas[int(np.argmax(shares))]


def rule_pursuit(weights, evidence, y, classification):
    s = _squash(_z(evidence))
    a = _pursuit(s)
    return -(a * s[:, 0] + (1 - a) * s[:, 1])


def rule_pursuit_raw(weights, evidence, y, classification):
    s = np.clip(_z(evidence), -10, 10)
    a = _pursuit(s)
    return -(a * s[:, 0] + (1 - a) * s[:, 1])


def _tail_excess(z, t=3.0):
    return max(np.mean(z > t) - np.mean(z < -t), 0.0)


def rule_tail(weights, evidence, y, classification):
    z = _z(evidence)
    w = np.array([_tail_excess(z[:, 0]), _tail_excess(z[:, 1])]) + 1e-12
    s = _squash(z)
    return -(s @ (w / w.sum()))


VALUE_RULES = {"weights": rule_weights, "label": rule_label, "feature": rule_feature,
               "zsum": rule_zsum, "squash_sum": rule_squash_sum, "pursuit": rule_pursuit,
               "pursuit_raw": rule_pursuit_raw, "tail": rule_tail}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=list(SETS), default="dev")
    parser.add_argument("--tasks", default=None)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--fit-only", action="store_true")
    parser.add_argument("--rules", default=",".join(VALUE_RULES))
    args = parser.parse_args(argv)
    names = args.tasks.split(",") if args.tasks else SETS[args.set]
    seeds = range(args.seeds)
    warnings.filterwarnings("ignore")
    fit_all(names, seeds, args.cache)
    if not args.fit_only:
        print_table(score(names, seeds, args.cache, args.rules.split(",")))



def _gmm_value(s, k, cov="full"):
    from sklearn.mixture import GaussianMixture
    g = GaussianMixture(k, covariance_type=cov, random_state=0, reg_covar=1e-3).fit(s)
    logp = g._estimate_weighted_log_prob(s)
    clean = int(np.argmax(g.weights_))
    others = np.delete(logp, clean, axis=1)
    return logp[:, clean] - np.logaddexp.reduce(others, axis=1)


def rule_gmm2(weights, evidence, y, classification):
    return _gmm_value(_squash(_z(evidence)), 2)


def rule_gmm3(weights, evidence, y, classification):
    return _gmm_value(_squash(_z(evidence)), 3)


def rule_gmm3w(weights, evidence, y, classification):
    s = np.column_stack([_squash(_z(evidence)), _squash(robust_z(weights))])
    return _gmm_value(s, 3)


VALUE_RULES.update(gmm2=rule_gmm2, gmm3=rule_gmm3, gmm3w=rule_gmm3w)


def rule_zmax(weights, evidence, y, classification):
    return -_z(evidence).max(axis=1)


def rule_softmax(weights, evidence, y, classification):
    return -np.logaddexp.reduce(_z(evidence), axis=1)


def rule_rankmax(weights, evidence, y, classification):
    from scipy.stats import rankdata
    r = np.column_stack([rankdata(evidence[:, 0]), rankdata(evidence[:, 1])])
    return -r.max(axis=1)


VALUE_RULES.update(zmax=rule_zmax, softmax=rule_softmax, rankmax=rule_rankmax)


def _given_proba(out, y, classification):
    if not classification:
        return None
    return out[np.arange(len(y)), y]


def _rules_gated():
    def gate_hard(w, e, y, c, out):
        s = _squash(_z(e))
        if not c:
            return -(s[:, 0] + s[:, 1])
        d = out.argmax(1) != y
        return -(s[:, 1] + s[:, 0] * d)

    def gate_soft(w, e, y, c, out):
        s = _squash(_z(e))
        if not c:
            return -(s[:, 0] + s[:, 1])
        return -(s[:, 1] + s[:, 0] * (1 - _given_proba(out, y, c)))

    def gate_max(w, e, y, c, out):
        z = _z(e)
        if not c:
            return -z.max(1)
        d = out.argmax(1) != y
        return -np.maximum(z[:, 1], np.where(d, z[:, 0], -np.inf))

    def gate_soft_pos(w, e, y, c, out):
        s = _squash(_z(e))
        if not c:
            return -(s[:, 0] + s[:, 1])
        q = 1 - _given_proba(out, y, c)
        return -(np.maximum(s[:, 1], 0) * (1 - q) + s[:, 0] * q + s[:, 1] * q * 0)

    def gate_global(w, e, y, c, out):
        s = _squash(_z(e))
        if not c:
            return -(s[:, 0] + s[:, 1])
        d = np.mean(out.argmax(1) != y)
        a = min(1.0, d / 0.1)
        return -(s[:, 1] * (1 - a / 2) + s[:, 0] * a)
    return dict(gate_hard=gate_hard, gate_soft=gate_soft, gate_max=gate_max,
                gate_soft_pos=gate_soft_pos, gate_global=gate_global)


VALUE_RULES.update(_rules_gated())


def _disagrees(out, y, c):
    if c:
        return out.argmax(1) != y
    resid = np.abs(np.asarray(y, float).reshape(len(y), -1) - out.reshape(len(y), -1)).max(1)
    return robust_z(resid) > 3


def _purity(z, dis, t=3.0):
    tail = z[:, 0] > t
    return float(dis[tail].mean()) if tail.any() else 0.0


def _rules_purity():
    def pur(w, e, y, c, out):
        z = _z(e)
        s = _squash(z)
        a = _purity(z, _disagrees(out, y, c))
        return -(a * s[:, 0] + (1 - a) * s[:, 1])

    def pur_clf(w, e, y, c, out):
        z = _z(e)
        s = _squash(z)
        a = _purity(z, _disagrees(out, y, c)) if c else 0.5
        return -(a * s[:, 0] + (1 - a) * s[:, 1])

    def pur_sq(w, e, y, c, out):
        z = _z(e)
        s = _squash(z)
        a = _purity(z, _disagrees(out, y, c)) if c else 0.5
        a = np.sqrt(a) / (np.sqrt(a) + np.sqrt(1 - a)) if 0 < a < 1 else a
        return -(a * s[:, 0] + (1 - a) * s[:, 1])
    return {"gate_pur": pur, "gate_pur_clf": pur_clf, "gate_pur_sq": pur_sq}


VALUE_RULES.update(_rules_purity())


def _per_class_z(column, y):
    out = np.empty(len(column))
    for k in np.unique(y):
        rows = y == k
        out[rows] = robust_z(column[rows])
    return out


def rule_label_per_class(weights, evidence, y, classification):
    """Minus the label side in robust z within each class (regression: overall)."""
    if not classification:
        return -robust_z(evidence[:, 0])
    return -_per_class_z(evidence[:, 0], y)


def rule_weights_per_class(weights, evidence, y, classification):
    """The weights in robust z within each class (regression: the weights)."""
    return _per_class_z(weights, y) if classification else weights


VALUE_RULES.update(label_per_class=rule_label_per_class,
                   weights_per_class=rule_weights_per_class)


if __name__ == "__main__":
    main()
