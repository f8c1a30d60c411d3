"""A W3C Baggage propagator that percent-encodes as the specification says (OpenTelemetry API only).

It is registered as the ``otel_runtime_baggage`` entry point of the ``opentelemetry_propagator``
group, so ``OTEL_PROPAGATORS=tracecontext,otel_runtime_baggage`` selects it without any code. The
encoding and the W3C limits are ``baggage_codec``'s; the outbound key policy is ``baggage_policy``'s.
"""

from __future__ import annotations

from opentelemetry import baggage
from opentelemetry.context import Context, get_current
from opentelemetry.propagators import textmap

from otel_runtime._core.baggage_codec import BAGGAGE_HEADER, decode_baggage, encode_baggage
from otel_runtime._core.baggage_policy import BaggagePolicy

__all__ = ["BaggagePropagator"]


class BaggagePropagator(textmap.TextMapPropagator):
    """W3C Baggage, percent-encoded per the specification, with the W3C limits and a key policy.

    A drop-in replacement for ``opentelemetry.baggage.propagation.W3CBaggagePropagator``.
    ``policy`` fixes the outbound key policy of this instance; by default it follows the process's
    (``propagation.configure_baggage``, else ``OTEL_RUNTIME_BAGGAGE_ALLOWED_KEYS``).
    """

    def __init__(self, *, policy: BaggagePolicy | None = None, plus_as_space: bool = False) -> None:
        self._policy = policy
        self._plus_as_space = plus_as_space

    def extract(
        self,
        carrier: textmap.CarrierT,
        context: Context | None = None,
        getter: textmap.Getter[textmap.CarrierT] = textmap.default_getter,
    ) -> Context:
        """``context`` (default: the current one) with the carrier's baggage entries added."""
        if context is None:
            context = get_current()
        headers = getter.get(carrier, BAGGAGE_HEADER)
        if not headers:
            return context
        for key, value in decode_baggage(headers, plus_as_space=self._plus_as_space).items():
            context = baggage.set_baggage(key, value, context)
        return context

    def inject(
        self,
        carrier: textmap.CarrierT,
        context: Context | None = None,
        setter: textmap.Setter[textmap.CarrierT] = textmap.default_setter,
    ) -> None:
        """Set the ``baggage`` header of ``carrier`` from the baggage of ``context`` (default: current)."""
        entries = baggage.get_all(context)
        if not entries:
            return
        header = encode_baggage(entries, self._policy)
        if header:
            setter.set(carrier, BAGGAGE_HEADER, header)

    @property
    def fields(self) -> set[str]:
        """The one header this propagator reads and writes: ``baggage``."""
        return {BAGGAGE_HEADER}


BaggagePropagator.__module__ = "otel_runtime.propagation"
