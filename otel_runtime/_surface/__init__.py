"""Layer 4: private helpers of the surfaces (runtime accessors, logging, propagation)."""
