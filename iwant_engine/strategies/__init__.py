"""Built-in matching strategies, registered through the ``iwant_strategies`` hook."""
