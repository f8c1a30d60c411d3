"""A W3C Baggage propagator that percent-encodes as the specification says (OpenTelemetry API only).

It is registered as the ``otel_runtime_baggage`` entry point of the ``opentelemetry_propagator``
group, so ``OTEL_PROPAGATORS=tracecontext,otel_runtime_baggage`` selects it without any code. The
encoding and the W3C limits are ``baggage_codec``'s; the outbound key policy is ``baggage_policy``'s.

:func:`spec_textmap` is what otel_runtime's own functions (``propagation.inject`` / ``extract`` /
``attach``, the environment carrier) propagate with: the global propagators (so ``OTEL_PROPAGATORS``
still chooses B3, Jaeger, ...), with the SDK's ``W3CBaggagePropagator`` replaced by this one, whether
or not ``configure()`` or ``install_baggage_propagator()`` ran.
"""

from __future__ import annotations

from opentelemetry import baggage, propagate
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context, get_current
from opentelemetry.propagators import textmap
from opentelemetry.propagators.composite import CompositePropagator

from otel_runtime._core.baggage_codec import BAGGAGE_HEADER, decode_baggage, encode_baggage
from otel_runtime._core.baggage_policy import BaggagePolicy

__all__ = ["BaggagePropagator", "spec_textmap", "swapped"]


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


def swapped(propagator: textmap.TextMapPropagator) -> textmap.TextMapPropagator:
    """``propagator`` with every SDK ``W3CBaggagePropagator`` in it (in a composite too) replaced by a
    :class:`BaggagePropagator`; ``propagator`` itself when it has none."""
    if type(propagator) is W3CBaggagePropagator:
        return BaggagePropagator()
    # The composite keeps its members in a private list; there is no public way to read them.
    members = getattr(propagator, "_propagators", None)
    if isinstance(propagator, CompositePropagator) and isinstance(members, list):
        replaced = [swapped(member) for member in members]
        if any(new is not old for new, old in zip(replaced, members, strict=True)):
            return CompositePropagator(replaced)
    return propagator


_spec: tuple[textmap.TextMapPropagator, textmap.TextMapPropagator] | None = None


def spec_textmap() -> textmap.TextMapPropagator:
    """The global propagators with spec-correct baggage; rebuilt only when the global ones change."""
    global _spec  # noqa: PLW0603 - one cached pair, replaced whole
    current = propagate.get_global_textmap()
    cached = _spec
    if cached is None or cached[0] is not current:
        cached = _spec = (current, swapped(current))
    return cached[1]
