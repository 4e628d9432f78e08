"""Worker warm-up: a spawned worker imports zfit, builds the SPE response model and runs one full fit before
its first point, so the model (and its traced graphs) are in the worker's cache when the first point comes."""

from __future__ import annotations

import time
from typing import Any

from remote_monitor.service.workers import Outcome, WorkerPool


def _cache_in_worker() -> list[dict[str, Any]]:
    from remote_monitor.analysis.spe_model import model_cache

    return [{"key": key, "pdfs": [type(pdf).__name__ for pdf in m.pdf.pdfs], "params": sorted(m.params)}
            for key, m in model_cache().items()]


def test_warm_up_runs_a_real_fit_in_the_worker() -> None:
    pool = WorkerPool(1, point_timeout=600.0)
    deadline = time.monotonic() + 600
    outcomes: list[Outcome] = []
    try:
        while not pool.idle() and time.monotonic() < deadline:  # ready only once the warm-up has run
            time.sleep(0.2)
        assert pool.submit("probe", (_cache_in_worker,))
        while not outcomes and time.monotonic() < deadline:
            outcomes = pool.take()
            time.sleep(0.1)
    finally:
        pool.shutdown()
    assert outcomes and outcomes[0].kind == "done", outcomes
    cached = outcomes[0].result
    assert cached, "warm-up left no model in the worker's cache"
    assert all(c["pdfs"] == ["PedestalPDF", "PhotoelectronPDF"] for c in cached)
    assert all({"q1", "mu", "sigma0", "w"} <= set(c["params"]) for c in cached)
    assert any(c["key"][0] <= 561 for c in cached)  # a model for (part of) the default 560-bin histogram
