"""zfit's Minuit with the loss's value evaluated as one compiled function of the whole parameter vector.

zfit's Minuit evaluates the loss through its `LossEval`: per call a jitted assignment of the floating
parameters, then the loss's own compiled function, each with TensorFlow's signature checks and zfit's cache
keys. On the SPE fit's loss (about 1 ms of graph per value) that work outside the graph made a value call
3-4 times dearer than the graph itself (`benchmarks/bench_gain.py --timing`). Here the assignment of every
model parameter and the loss value are one TF function of one vector (`CompiledLoss`, traced once per model
and shared by its minimisers): Migrad's and Hesse's value calls cost what the graph costs; the gradient is
TensorFlow's autodiff of the same loss, as zfit's, compiled once. Everything else is zfit's Minuit unchanged:
its tolerance, strategy, limits, NaN handling and `FitResult` (Hesse reuses the same Minuit).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np


class CompiledLoss:
    """A zfit loss's value and gradient as TF functions of all of `params` (the vector in their order)."""

    def __init__(self, loss: Any, params: Sequence[Any]) -> None:
        import tensorflow as tf  # type: ignore[import-untyped]

        self.loss, self.params = loss, list(params)
        self.position = {id(p): i for i, p in enumerate(self.params)}

        @tf.function(autograph=False)  # type: ignore[untyped-decorator]
        def value_of(vector: Any) -> Any:
            for i, param in enumerate(self.params):
                param.assign(vector[i], read_value=False)
            return loss.value(full=True)

        @tf.function(autograph=False)  # type: ignore[untyped-decorator]
        def gradient_of() -> Any:
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(self.params)
                value = loss.value(full=True)
            return tf.stack(tape.gradient(value, self.params, unconnected_gradients=tf.UnconnectedGradients.ZERO))

        self.value_of, self.gradient_of = value_of, gradient_of

    def positions(self, params: Sequence[Any]) -> np.ndarray:
        """The places of `params` (among this loss's) in the parameter vector."""
        return np.array([self.position[id(p)] for p in params], dtype=int)

    def gradient(self, params: Sequence[Any]) -> np.ndarray:
        """The gradient with respect to `params` (among this loss's) at the parameters' current values."""
        return self.gradient_at(self.positions(params))

    def gradient_at(self, positions: np.ndarray) -> np.ndarray:
        """The gradient's components at these places of the parameter vector (see `positions`)."""
        return np.asarray(self.gradient_of())[positions]

    def serves(self, loss: Any, params: Sequence[Any]) -> bool:
        """Whether this is `loss` and `params` are among its parameters."""
        return loss is self.loss and all(id(p) in self.position for p in params)


def vector_minuit(compiled: CompiledLoss, rounds: int | None = None, **options: Any) -> Any:
    """A zfit Minuit (`options` as for `zfit.minimize.Minuit`) whose value calls on `compiled.loss` go through
    `compiled`; `rounds`: at most this many Migrad calls per minimisation (zfit's own limit: 20), each of at most
    `maxiter` function calls (Minuit's default: 200 + 100 n + 5 n^2 for n parameters)."""
    return _minuit_class()(compiled, rounds, **options)


@functools.cache
def _minuit_class() -> type:
    """The minimiser class with its evaluator (defined on first use, so that importing this module does not
    import zfit)."""
    import tensorflow as tf
    import zfit
    from zfit.minimizers.evaluation import LossEval

    class VectorLossEval(LossEval):  # type: ignore[misc]
        """zfit's evaluator whose value is `compiled.value_of(vector)`: the floating parameters' values placed
        into the full parameter vector (the others keep the values they had when the minimisation began), minus
        the value there (zfit's evaluator also subtracts a constant, computed once per loss)."""

        def __init__(self, compiled: CompiledLoss, **kwargs: Any) -> None:
            super().__init__(grad_fn=self._gradient, **kwargs)
            self._compiled = compiled
            self._vector = np.array([float(p.value()) for p in compiled.params])
            self._positions = compiled.positions(self.params)
            self._offset = float(compiled.value_of(tf.constant(self._vector)))

        def _gradient(self, params: Any) -> np.ndarray:  # noqa: ARG002 - zfit's evaluator has assigned them
            return self._compiled.gradient_at(self._positions)  # (places looked up once, not per call)

        def _assign_and_value(self, values: Any) -> Any:
            vector = self._vector.copy()
            vector[self._positions] = np.asarray(values, dtype=float)
            return self._compiled.value_of(tf.constant(vector)) - self._offset

    class VectorMinuit(zfit.minimize.Minuit):  # type: ignore[misc]
        """zfit's Minuit evaluating its compiled loss through `VectorLossEval` (other losses as zfit does)."""

        def __init__(self, compiled: CompiledLoss, rounds: int | None, **options: Any) -> None:
            super().__init__(**options)
            self.compiled = compiled
            if rounds is not None:  # zfit calls Migrad again while its convergence criterion is not met, up to
                self._internal_maxiter = rounds  # this many times (its private setting; no option sets it)

        def create_evaluator(self, loss: Any = None, params: Any = None, numpy_converter: Any = None,
                             strategy: Any = None) -> Any:
            plain = super().create_evaluator(loss, params, numpy_converter, strategy)
            if not self.compiled.serves(plain.loss, plain.params):
                return plain
            evaluator = VectorLossEval(self.compiled, loss=plain.loss, params=plain.params,
                                       strategy=plain.strategy, do_print=plain.do_print, maxiter=plain.maxiter,
                                       numpy_converter=plain.numpy_converter or None)
            if self._is_stateful:
                self._state["evaluator"] = evaluator
            return evaluator

    return VectorMinuit
