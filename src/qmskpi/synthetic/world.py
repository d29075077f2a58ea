"""Master data shared by the datasets (:class:`_World`): products per site, customers, suppliers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qmskpi.synthetic.draws import FloatArray, IntArray
from qmskpi.synthetic.spec import (
    CUSTOMER_CATALOGUE,
    CUSTOMER_OFFSET_PER_SITE,
    PRODUCT_CATALOGUE,
    PRODUCT_OFFSET_PER_SITE,
    SyntheticSpec,
    _customers,
    _supplier_def,
    _supplier_ids,
    _SupplierDef,
)


@dataclass(frozen=True)
class _World:
    """Master data shared by the datasets: products per site, customers, suppliers."""

    products: tuple[str, ...]
    nouns: tuple[str, ...]
    site_products: IntArray
    """(sites x products_per_site) index into ``products``."""
    base_units: FloatArray
    """(sites x products_per_site) typical monthly units at scale 1."""
    customers: tuple[str, ...]
    site_customers: IntArray
    """(sites x customers_per_site) index into ``customers``."""
    customer_p: FloatArray
    """Zipf-like share of each of a site's customers."""
    site_factor: FloatArray
    """Per-site multiplier of defect and complaint rates."""
    suppliers: tuple[_SupplierDef, ...]
    supplier_ids: tuple[str, ...]

    @staticmethod
    def build(spec: SyntheticSpec, rng: np.random.Generator) -> _World:
        n_cat = len(PRODUCT_CATALOGUE)
        n_products = max(n_cat, (spec.sites - 1) * PRODUCT_OFFSET_PER_SITE + spec.products_per_site)
        products = [p for p, _ in PRODUCT_CATALOGUE]
        nouns = [nn for _, nn in PRODUCT_CATALOGUE]
        for i in range(n_cat, n_products):
            base_code, noun = PRODUCT_CATALOGUE[i % n_cat]
            products.append(f"{base_code[:2]}-{100 + i * 10}")
            nouns.append(noun)
        site_products = (
            np.arange(spec.sites, dtype=np.int64)[:, None] * PRODUCT_OFFSET_PER_SITE
            + np.arange(spec.products_per_site, dtype=np.int64)[None, :]
        ) % n_products
        base_units = rng.uniform(6_000.0, 28_000.0, size=site_products.shape)
        n_cust = max(
            len(CUSTOMER_CATALOGUE),
            (spec.sites - 1) * CUSTOMER_OFFSET_PER_SITE + spec.customers_per_site,
        )
        site_customers = (
            np.arange(spec.sites, dtype=np.int64)[:, None] * CUSTOMER_OFFSET_PER_SITE
            + np.arange(spec.customers_per_site, dtype=np.int64)[None, :]
        ) % n_cust
        ranks = np.arange(1, spec.customers_per_site + 1, dtype=np.float64)
        customer_p = (1.0 / np.sqrt(ranks)) / (1.0 / np.sqrt(ranks)).sum()
        site_factor = np.round(rng.uniform(0.8, 1.2, size=spec.sites), 3)
        site_factor[: min(3, spec.sites)] = (1.0, 1.1, 0.9)[: min(3, spec.sites)]
        return _World(
            products=tuple(products),
            nouns=tuple(nouns),
            site_products=site_products,
            base_units=base_units,
            customers=tuple(_customers(n_cust)),
            site_customers=site_customers,
            customer_p=customer_p,
            site_factor=site_factor,
            suppliers=tuple(_supplier_def(i) for i in range(spec.suppliers)),
            supplier_ids=tuple(_supplier_ids(spec.suppliers)),
        )
