"""Statistical process control: control charts, signal rules and the NHS icons.

Every chart returns a frozen :class:`ControlChart`: one value, centre line,
upper and lower limit and one-sigma width per point, the signals at each point,
and the phases (rebased periods) whose baseline points set the limits.

Charts (σ̂ = estimated process sigma; ``c.sigma`` = (UCL − CL)/3 before any floor)

==============  ===========================================================
``xmr``         X chart of individual values. CL = x̄, limits x̄ ± 2.66·MR̄,
                MR̄ = mean moving range |xᵢ − xᵢ₋₁| (Wheeler; 2.66 = 3/d₂,
                d₂ = 1.128). ``c.mr_chart``: MR̄, UCL 3.267·MR̄ (= D₄ for n=2).
``p``           p̄ = Σd/Σn; limits p̄ ± 3·√(p̄(1−p̄)/nᵢ) per point.
``np``          n·p̄ ± 3·√(n·p̄(1−p̄)), constant n.
``p'``          Laney p′: zᵢ = (pᵢ − p̄)/σ_pᵢ, σ_z = mean|zᵢ − zᵢ₋₁|/1.128;
                limits p̄ ± 3·σ_pᵢ·σ_z (Laney 2002, Quality Engineering 14(4)).
``u``           ū = Σc/Σa; limits ū ± 3·√(ū/aᵢ) per point.
``c``           c̄ ± 3·√c̄.
``xbar_r``      x̿ ± A₂·R̄ (= 3σ̂/√n, σ̂ = R̄/d₂); ``c.range_chart``: D₃·R̄,
                R̄, D₄·R̄.
``xbar_s``      x̿ ± A₃·s̄ (= 3σ̂/√n, σ̂ = s̄/c₄); ``c.sd_chart``: B₃·s̄, s̄, B₄·s̄.
==============  ===========================================================

LCLs of attribute charts (p, np, p′, u, c) are floored at 0; UCLs of p and p′
are capped at 1 and of np at n (as qcc and Minitab do). R, S and MR charts have
LCL ≥ 0 by construction. Subgroup constants for n = 2..25 are the printed table
(Montgomery, *Introduction to Statistical Quality Control*, Appendix VI;
ASTM E2587). A₂ and A₃ are applied as their definitions 3/(d₂√n), 3/(c₄√n)
from the tabulated d₂, c₄ (as qcc does; the printed 3-decimal A₂, A₃ differ in
the 4th digit); D₃, D₄, B₃, B₄ are used as printed. For unequal subgroup sizes
σ̂ is the plain mean of Rᵢ/d₂(nᵢ) (or sᵢ/c₄(nᵢ)) over the baseline and each
point gets the limits of its own nᵢ (qcc weights the per-subgroup estimates,
so it differs slightly).

Baselines, phases and missing points

- ``baseline=None``: every point of a phase sets its limits; ``int n``: the first
  ``n`` points of each phase (limits frozen after them); a sequence of 0-based
  point indices: only those points (leave known special causes out).
- ``rebase=[i, j]``: new phases start at points ``i`` and ``j``; each phase has
  its own limits, and rules never look across a phase boundary.
- NaN values (and zero denominators, subgroups of fewer than 2 measurements)
  are missing: listed in ``c.missing``, left out of limits and moving ranges
  (a moving range needs two adjacent observed points of the same phase, both
  in the baseline) and skipped by the rules.
- A single usable point gives NaN limits on charts whose σ̂ comes from moving
  ranges (XmR, p′) and ordinary limits on the others. Empty input, or a phase
  with no usable baseline point, raises :class:`SpcError`.

Rules (names are stable strings; a rule flags a point, never a gap)

- ``"mdc"`` (NHS England "Making Data Count", the default): ``beyond_limits``
  (outside a limit); ``shift`` (``run_length``=7 points in a row on one side of
  the centre; a point exactly on the centre breaks the run); ``trend``
  (``trend_length``=7 points strictly rising or falling); ``two_of_three``
  (2 of 3 consecutive points beyond 2σ, i.e. 2/3 of the way to a limit, all
  three on the same side). Every point of a shift or trend is flagged; for
  ``two_of_three`` the points beyond 2σ. (NHSRplotthedots does not count a point
  beyond a limit as "close"; here it counts, as in the Western Electric rule.)
- ``"western_electric"``: ``we1`` beyond a limit; ``we2`` 2 of 3 beyond 2σ on one
  side; ``we3`` 4 of 5 beyond 1σ on one side; ``we4`` ``run_length``=8 in a row on
  one side.
- ``"nelson"``: ``nelson1`` beyond a limit; ``nelson2`` ``run_length``=9 on one
  side; ``nelson3`` ``trend_length``=6 points steadily rising or falling;
  ``nelson4`` 14 points alternating up and down; ``nelson5`` 2 of 3 beyond 2σ;
  ``nelson6`` 4 of 5 beyond 1σ (same side); ``nelson7`` 15 in a row within 1σ;
  ``nelson8`` 8 in a row beyond 1σ, either side.
  Western Electric and Nelson rules flag the point that completes the pattern
  (and each later point while it holds). Dispersion charts (MR, R, S) are only
  checked against their limits (``beyond_limits``/``we1``/``nelson1``).

Icons (NHS Making Data Count): :func:`classify` labels each signal improvement,
concern or neutral from the KPI's direction; :func:`variation` gives the icon of
the last observed point; :func:`assurance` compares a target with the last
point's limits. :func:`auto_chart` picks the chart from a KPI's kind (p′ over
p when :func:`overdispersion` finds σ_z > 1 + 2·0.91/√m; see :class:`Overdispersion`).

The parts, in the order they import each other (import-linter enforces it;
``from qmskpi import spc`` / ``from qmskpi.spc import X`` for every public name):

- :mod:`~qmskpi.spc.choice` (:func:`auto_chart`, :func:`overdispersion`) and
  :mod:`~qmskpi.spc.icons` (:func:`classify`, :func:`variation`, :func:`assurance`);
- :mod:`~qmskpi.spc.rare`: :func:`g_chart`, :func:`t_chart`, :func:`rare_events`;
- the charts: :mod:`~qmskpi.spc.individuals` (:func:`xmr`),
  :mod:`~qmskpi.spc.attributes` (:func:`p_chart`, :func:`np_chart`,
  :func:`laney_p_chart`, :func:`u_chart`, :func:`c_chart`),
  :mod:`~qmskpi.spc.subgroups` (:func:`xbar_r`, :func:`xbar_s`) and
  :mod:`~qmskpi.spc.runchart` (:func:`run_chart`);
- :mod:`~qmskpi.spc.assembly`: a :class:`ControlChart` from values and limits;
- :mod:`~qmskpi.spc.inputs` (input checks, phases, baselines) and
  :mod:`~qmskpi.spc.rules` (the signal rules);
- :mod:`~qmskpi.spc.results` (:class:`ControlChart`, :class:`RuleSet`,
  :class:`Phase`, :class:`BaselineStatement`) and :mod:`~qmskpi.spc.factors`
  (:func:`constants`);
- :mod:`~qmskpi.spc.base`: type names, the limits' constants, :class:`SpcError`.
"""

from __future__ import annotations

from qmskpi.spc.attributes import c_chart, laney_p_chart, np_chart, p_chart, u_chart
from qmskpi.spc.base import (
    LANEY_D2,
    MIN_POINTS_FOR_LIMITS,
    MR_LIMIT,
    RARE_MEAN_COUNT,
    RULE_NAMES,
    SCREEN_LIMIT,
    T_EXPONENT,
    XMR_LIMIT,
    Assurance,
    ChartName,
    ChartStatus,
    Direction,
    KpiKind,
    RuleSetName,
    SignalLabel,
    SpcError,
    Variation,
)
from qmskpi.spc.base import OVERDISPERSION_SE as OVERDISPERSION_SE
from qmskpi.spc.base import Baseline as Baseline
from qmskpi.spc.base import BoolArray as BoolArray
from qmskpi.spc.base import FloatArray as FloatArray
from qmskpi.spc.base import IntArray as IntArray
from qmskpi.spc.choice import Overdispersion, auto_chart, overdispersion
from qmskpi.spc.factors import SubgroupConstants, constants
from qmskpi.spc.icons import assurance, classify, variation
from qmskpi.spc.individuals import xmr
from qmskpi.spc.rare import g_chart, rare_events, t_chart
from qmskpi.spc.results import BaselineMethod as BaselineMethod
from qmskpi.spc.results import BaselineStatement, ControlChart, Phase, RuleSet
from qmskpi.spc.results import PhaseBaseline as PhaseBaseline
from qmskpi.spc.runchart import run_chart
from qmskpi.spc.subgroups import xbar_r, xbar_s

__all__ = [
    "LANEY_D2",
    "MIN_POINTS_FOR_LIMITS",
    "MR_LIMIT",
    "RARE_MEAN_COUNT",
    "RULE_NAMES",
    "SCREEN_LIMIT",
    "T_EXPONENT",
    "XMR_LIMIT",
    "Assurance",
    "BaselineStatement",
    "ChartName",
    "ChartStatus",
    "ControlChart",
    "Direction",
    "KpiKind",
    "Overdispersion",
    "Phase",
    "RuleSet",
    "RuleSetName",
    "SignalLabel",
    "SpcError",
    "SubgroupConstants",
    "Variation",
    "assurance",
    "auto_chart",
    "c_chart",
    "classify",
    "constants",
    "g_chart",
    "laney_p_chart",
    "np_chart",
    "overdispersion",
    "p_chart",
    "rare_events",
    "run_chart",
    "t_chart",
    "u_chart",
    "variation",
    "xbar_r",
    "xbar_s",
    "xmr",
]
