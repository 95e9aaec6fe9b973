"""The pure core: model, normalization, merge, planners, engine, ports and errors.

Nothing in this package does I/O or reads the clock; the engine is handed ports.
"""
