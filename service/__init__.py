"""eoc-ntk REST service: FastAPI front end over the numerical core ``eoc_ntk``.

``python -m service`` runs it; :func:`service.app.create_app` builds the application.
"""
