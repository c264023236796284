"""The pool's I/O shell for asyncio: the source of truth. ``tools/async_to_sync.py``
generates the thread pool's modules in ``poolwarden._sync`` from the modules here;
``_compat`` and ``_housekeeper`` are written by hand on both sides."""
