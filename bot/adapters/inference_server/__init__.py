"""The inference service as a Ray Serve application (``python -m bot serve``).

:mod:`.app` holds the two deployments (an HTTP ingress and the model deployment) and the
application builder ``build_app`` for ``serve run`` / ``serve deploy``; :mod:`.runner` runs it in
the foreground (``serve_main``). The protocol is :mod:`bot.inference.wire`'s.

Importing this package imports neither Ray nor torch: both are imported by the modules above.
"""
