"""The deployment of the active flow run: ``runtime.deployment.name``, ``.id``, ``.version``, ...

``None`` (``{}`` for ``parameters``) outside a run or in a run that belongs to no deployment. In a
process that only received baggage, ``id`` and ``name`` come from it.
"""

from otel_runtime.runtime._accessors import DEPLOYMENT
from otel_runtime.runtime._lazy import lazy_module

__getattr__, __dir__ = lazy_module(__name__, DEPLOYMENT)
del DEPLOYMENT, lazy_module
