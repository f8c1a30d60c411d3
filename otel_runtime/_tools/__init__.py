"""Layer 6: tools: the test receiver, the trace tree, the demo."""
