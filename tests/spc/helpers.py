"""Shared data and helpers of the qmskpi.spc tests: published data sets, the rule-test chart.

Sources of expected numbers (cited again at each test):

- qcc: the R package qcc (L. Scrucca, github.com/luca-scr/qcc), datasets in its
  data/ folder; printed results from qcc's summaries: orangejuice p chart
  ("Center of group statistics: 0.2313333 ... Control limits: 0.05242755
  0.4102391"), the quick-tour vignette (qcc 2.7, pistonrings 2-sigma warning
  limits 73.99242 / 74.00993), and qcc outputs reproduced in the mistat
  package's comparison-with-R tests (Kenett, Zacks & Gedeck 2022, mistat/qcc/tests).
- Montgomery, D.C., Introduction to Statistical Quality Control (qcc cites the
  2nd ed., 1991, for the datasets: orangejuice pp. 152-155, circuit pp. 173-175,
  pcmanufact pp. 181-182, dyedcloth pp. 183-184, pistonrings pp. 206-213;
  viscosity "pag. 242"); Table 6.3 of later editions for the piston rings.
- Wetherill, G.B. & Brown, D.W. (1991) Statistical Process Control, p. 120
  (antifreeze water content, via qcc).
- NHS England "Making Data Count" as implemented by NHSRplotthedots
  (github.com/nhs-r-community/NHSRplotthedots): 2.66/3.267 constants, outlier
  screening, the 2-of-3 same-side test case, and the assurance logic.
Where no published number was available the expected value is computed by hand
in a comment from the formulas in the qmskpi.spc package docstring.
"""

from __future__ import annotations

from qmskpi import spc

# qcc data/orangejuice.txt, trial samples 1-30 (n = 50 cans each); Montgomery 2nd ed pp. 152-155.
ORANGEJUICE = [12, 15, 8, 10, 4, 7, 16, 9, 14, 10, 5, 6, 17, 12, 22,
               8, 10, 5, 13, 11, 20, 18, 24, 15, 9, 12, 7, 13, 9, 6]  # fmt: skip

# qcc data/orangejuice2.txt, trial samples 31-54 (after the machine adjustment).
ORANGEJUICE2 = [9, 6, 12, 5, 6, 4, 6, 3, 7, 6, 2, 4, 3, 6, 5, 4, 8, 5, 6, 7, 5, 6, 3, 5]

# qcc data/circuit.txt, trial samples 1-26 (nonconformities per 100 boards).
CIRCUIT = [21, 24, 16, 12, 15, 5, 28, 20, 31, 25, 20, 24, 16,
           19, 10, 17, 13, 22, 18, 39, 30, 24, 16, 19, 17, 15]  # fmt: skip

# qcc data/pcmanufact.txt: nonconformities in 20 samples of 5 computers.
PCMANUFACT = [10, 12, 8, 14, 10, 16, 11, 7, 10, 15, 9, 5, 7, 11, 12, 6, 8, 10, 7, 5]

# qcc data/dyedcloth.txt: nonconformities and 50 m² inspection units per roll.
DYEDCLOTH_X = [14, 12, 20, 11, 7, 10, 21, 16, 19, 23]
DYEDCLOTH_UNITS = [10, 8, 13, 10, 9.5, 10, 12, 10.5, 12, 12.5]

# qcc ?qcc example "viscosity data (Montgomery, pag. 242)": 15 batches of primer paint.
VISCOSITY = [33.75, 33.05, 34, 33.81, 33.46, 34.02, 33.68, 33.27,
             33.49, 33.20, 33.62, 33.00, 33.54, 33.12, 33.84]  # fmt: skip

# qcc antifreeze water content (Wetherill & Brown 1991, p. 120).
ANTIFREEZE = [2.23, 2.53, 2.62, 2.63, 2.58, 2.44, 2.49, 2.34, 2.95, 2.54, 2.60, 2.45,
              2.17, 2.58, 2.57, 2.44, 2.38, 2.23, 2.23, 2.54, 2.66, 2.84, 2.81, 2.39,
              2.56, 2.70, 3.00, 2.81, 2.77, 2.89, 2.54, 2.98, 2.35, 2.53]  # fmt: skip

# qcc data/pistonrings.txt, trial samples 1-25 of 5 inside diameters (mm).
PISTONRINGS = [
    [74.030, 74.002, 74.019, 73.992, 74.008], [73.995, 73.992, 74.001, 74.011, 74.004],
    [73.988, 74.024, 74.021, 74.005, 74.002], [74.002, 73.996, 73.993, 74.015, 74.009],
    [73.992, 74.007, 74.015, 73.989, 74.014], [74.009, 73.994, 73.997, 73.985, 73.993],
    [73.995, 74.006, 73.994, 74.000, 74.005], [73.985, 74.003, 73.993, 74.015, 73.988],
    [74.008, 73.995, 74.009, 74.005, 74.004], [73.998, 74.000, 73.990, 74.007, 73.995],
    [73.994, 73.998, 73.994, 73.995, 73.990], [74.004, 74.000, 74.007, 74.000, 73.996],
    [73.983, 74.002, 73.998, 73.997, 74.012], [74.006, 73.967, 73.994, 74.000, 73.984],
    [74.012, 74.014, 73.998, 73.999, 74.007], [74.000, 73.984, 74.005, 73.998, 73.996],
    [73.994, 74.012, 73.986, 74.005, 74.007], [74.006, 74.010, 74.018, 74.003, 74.000],
    [73.984, 74.002, 74.003, 74.005, 73.997], [74.000, 74.010, 74.013, 74.020, 74.003],
    [73.988, 74.001, 74.009, 74.005, 73.996], [74.004, 73.999, 73.990, 74.006, 74.009],
    [74.010, 73.989, 73.990, 74.009, 74.014], [74.015, 74.008, 73.993, 74.000, 74.010],
    [73.982, 73.984, 73.995, 74.017, 74.013],
]  # fmt: skip

# Montgomery's Table 6.3 prints sample 21 as 73.982 74.001 74.015 74.005 73.996
# (qcc's file has 73.988 ... 74.009): same mean, larger range.
PISTONRINGS_MONTGOMERY = [
    *PISTONRINGS[:20],
    [73.982, 74.001, 74.015, 74.005, 73.996],
    *PISTONRINGS[21:],
]


def fired(chart: spc.ControlChart) -> dict[int, set[str]]:
    """Points with a signal -> their rule names."""
    return {i: set(s) for i, s in enumerate(chart.signals) if s}


# A benign baseline for XmR: CL = 11, MR̄ = 1 (all moving ranges 1), so UCL 13.66,
# LCL 8.34, σ = 2.66/3 = 0.886667; 1σ band 10.1133..11.8867, 2σ band 9.2267..12.7733.
# It triggers no rule of any set (runs of 1, slopes in pairs, 10/12 alternate with 11s).
BASE = [11, 10, 11, 12] * 3  # indices 0..11; point 11 is 12 (above, reached rising)


def chart(tail: list[float], rules: str | spc.RuleSet = "mdc") -> spc.ControlChart:
    return spc.xmr(BASE + tail, baseline=len(BASE), rules=rules)  # type: ignore[arg-type]


ABOVE = [11.5, 11.5, 11.2, 11.2, 11.5, 11.5, 11.2, 11.2, 11.5]  # inside 1σ, above CL
RISING = [10.2, 10.4, 10.6, 10.8, 11.2, 11.4, 11.6]  # inside 1σ, strictly rising
