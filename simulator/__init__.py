"""A simulated OpenAI-compatible LLM server for offline runs, demos and tests.

It is always labelled as a simulator: model ids start with ``sim-``, every response carries
``system_fingerprint: touchstone-simulator`` and the header ``X-Touchstone-Simulator: 1``,
and every rationale starts with ``[simulated]``. Nothing it says is a real model's output.
"""

SIMULATOR_FINGERPRINT = "touchstone-simulator"
SIMULATED_PREFIX = "[simulated]"
