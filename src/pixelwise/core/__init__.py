"""What every layer of pixelwise uses: errors, the version, crash-safe writes, optional imports,
constants, the registry pattern, device and precision choice, metrics and drawing.

``core`` imports nothing else of pixelwise; the layers above it are, in order::

    core -> data -> models -> training | inference -> serve | cli | demo

(``tests/test_architecture.py`` fails on any import against that order and on any import cycle.)
"""
