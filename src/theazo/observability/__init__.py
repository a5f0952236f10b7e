"""What a node tells its operator: Prometheus metrics (``metrics.py``, served by ``listener.py``
on an address of their own) and structured logs (``logs.py``). Both hear of task transitions
from one place (``transitions.py``): the status events this node's own transactions commit."""
