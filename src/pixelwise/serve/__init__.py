"""``pixelwise serve``: a trained model as a web service and a web page.

``service.py`` puts a :class:`~pixelwise.inference.predictor.Predictor` behind a batching queue
(``batcher.py``), ``uploads.py`` checks and decodes uploaded images, ``outputs.py`` encodes the answers,
``app.py`` is the FastAPI application (API and page, ``static/``) and ``server.py`` runs it with uvicorn.

It needs the ``serve`` extra (FastAPI, uvicorn, python-multipart): ``pip install 'pixelwise[serve]'``.
Import :func:`check_installed` first: a missing package is then one error line naming the extra.

>>> check_installed()
"""

from __future__ import annotations

from pixelwise.core.optional import import_optional

# The import names of the serve extra's packages.
SERVE_MODULES = ("fastapi", "uvicorn", "python_multipart")


def check_installed() -> None:
    """A ConfigError "pixelwise serve needs the '<module>' package; pip install 'pixelwise[serve]'" for a missing
    one."""
    for module in SERVE_MODULES:
        import_optional(module, extra="serve", purpose="pixelwise serve")
