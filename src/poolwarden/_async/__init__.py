"""The pool's I/O shell for asyncio: the source of truth. ``tools/async_to_sync.py``
generates the thread pool's modules (``poolwarden._pool``, ``_proxy``, ``_io``, ``_held``,
``_background``, ``_housekeeper``) from the modules here; ``_compat`` is written by hand on
both sides."""
