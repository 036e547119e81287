"""The pure core: geometry, matching and alert lifecycle. No broker, Redis or socket here.

Importing it does nothing else: where the compiled kernels are cached is chosen by
``kernel_cache.use_kernel_cache()``, which a program calls before it imports the engine.
"""
