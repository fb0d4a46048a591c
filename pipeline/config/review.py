"""The accuracy assessment (``assess``) and the analyst review (``review``).

``assess`` is the stratified sample design of :mod:`pipeline.assess` (Olofsson et al. 2014);
``review`` locates the site register of analysts' verdicts (:mod:`pipeline.register`).
"""

from __future__ import annotations

from pathlib import Path

from ._base import _DESIGN, _JUDGEMENT, _param, _Section

_OLOFSSON = "Olofsson et al. 2014"


class AssessParams(_Section):
    """Stratified sample design of the accuracy assessment (Olofsson et al. 2014)."""

    buffer_m: float = _param(
        30.0, unit="m", source="Olofsson et al. 2014 (buffer stratum); width: judgement on tests/test_assess_runs.py",
        gt=0, le=5000,
    )
    """Width (m) of the ``buffer`` stratum, the ring around the detected sites. Omission hides
    there: the rims a map of 10 m pixels draws one or two pixels short, pits next to a mapped
    site. Sampling the ring apart puts points where missed mining is, instead of spreading them
    over the whole ``stable`` rest; a wider ring dilutes it, so that a sample of the ring's
    ``min_buffer_n`` points more often holds none of it and the interval cannot weigh it.
    Measured (``tests/test_assess_runs.py``, three synthetic whole runs, 30 samples): 75-100 %
    of the omitted area lay within 30 m of the sites; the 95 % interval held the true area in
    14 of 30 samples with a 100 m ring, 18 with 50 m, 26 with 30 m, 28 with 20 m. Judgement:
    30 m rather than 20 m, a margin for real maps, whose rim errors were not measured here."""
    site_users_accuracy: float = _param(0.8, unit="fraction (0–1)", source=_JUDGEMENT, gt=0, lt=1)
    """Conjectured share of ``site`` points an analyst will label ``mining`` (the user's
    accuracy of the site stratum), for the sample size. Judgement, not measured: replace it with
    the figure of a first assessment."""
    buffer_users_accuracy: float = _param(0.9, unit="fraction (0–1)", source=_JUDGEMENT, gt=0, lt=1)
    """Conjectured share of ``buffer`` points labelled ``not_mining``; lower than ``stable``'s
    because omission concentrates next to the sites. Judgement, not measured."""
    stable_users_accuracy: float = _param(0.99, unit="fraction (0–1)", source=_JUDGEMENT, gt=0, lt=1)
    """Conjectured share of ``stable`` points labelled ``not_mining``. Judgement, not measured."""
    target_overall_se: float = _param(0.01, unit="fraction (0–1)", source=_OLOFSSON, gt=0, lt=0.5)
    """Target standard error of the overall accuracy for the sample size formula
    ``n = (sum_h W_h S_h / S(O))^2`` (Olofsson et al. 2014 eq. 13; 0.01 in their example)."""
    min_site_n: int = _param(100, unit="points", source=_OLOFSSON, ge=2)
    """Minimum sample size of the ``site`` stratum, a rare stratum that proportional allocation
    would starve. Olofsson et al. (2014) recommend 50-100 points per rare class and the rest
    allocated in proportion to area."""
    min_buffer_n: int = _param(100, unit="points", source=_OLOFSSON, ge=2)
    """Minimum sample size of the ``buffer`` stratum (see ``min_site_n``)."""
    min_stable_n: int = _param(100, unit="points", source=_DESIGN, ge=2)
    """Minimum sample size of the ``stable`` stratum: it covers most of the AOI, so mining
    omitted there, though rare, weighs heavily on the area estimate; the variance needs at
    least 2 points per stratum."""
    seed: int = _param(0, unit="random seed", source=_DESIGN, ge=0)
    """Seed of the random point draw (:func:`pipeline.assess.design.draw_sample`): the same
    strata and seed give the same sample, so a sample can be redrawn and checked."""
    ci_z: float = _param(1.96, unit="standard normal quantile", source=_OLOFSSON, gt=0)
    """Confidence intervals are ``+- ci_z`` standard errors (1.96: 95 %)."""
    chip_size_px: int = _param(64, unit="pixels", source=_DESIGN, ge=8, le=1024)
    """Side of the before/after image chips written for the analyst (64 px: 640 m at 10 m)."""
    max_points: int = _param(5000, unit="points", source=_JUDGEMENT, ge=6, le=1_000_000)
    """Largest ``--n`` that ``assess sample`` accepts (the formula's own size is not capped):
    every point is labelled by eye from its two chips. Olofsson et al. (2014) work with samples
    of a few hundred to about a thousand points; 5000 leaves room for a team. A larger ``--n``
    is refused rather than run for hours writing two chips a point (``--n 100000000`` ran on
    with no end)."""

    def users_accuracy(self) -> dict[str, float]:
        """Conjectured user's accuracy per stratum (``site``, ``buffer``, ``stable``)."""
        return {"site": self.site_users_accuracy, "buffer": self.buffer_users_accuracy,
                "stable": self.stable_users_accuracy}

    def minimums(self) -> dict[str, int]:
        """Minimum sample size per stratum."""
        return {"site": self.min_site_n, "buffer": self.min_buffer_n, "stable": self.min_stable_n}


class ReviewParams(_Section):
    """Where analysts' verdicts live and how they follow a site from run to run."""

    register_path: Path | None = _param(None, unit="SQLite file", source=_DESIGN)
    """The site register (SQLite; :mod:`pipeline.register`): every verdict an analyst recorded
    with ``python -m pipeline review``, keyed by ``site_id``, with the site's outline at the time.
    Relative to the YAML file. ``None``: ``site_register.sqlite`` in the output folder, beside
    the site history it refers to."""
    match_overlap_frac: float = _param(0.1, unit="fraction (0–1)", source=_DESIGN, gt=0, le=1)
    """A site without a verdict of its own takes the ``false_alarm`` verdict of a register
    outline it overlaps by at least this share of the smaller of the two (the rule
    :func:`pipeline.sites.track_sites` uses to call two sites the same), so that a dismissed
    false alarm that vanished and reappeared under another id is not reported again."""
