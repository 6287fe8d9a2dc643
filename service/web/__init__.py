"""The web page at ``/``: upload or paste data, choose depths and activations, watch the job, see plot and table.

A single static page (``index.html`` next to this file) that talks to the public API only.
"""
from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

__all__ = ["router"]

router = APIRouter(tags=["web"])


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def index() -> HTMLResponse:
    """The web page."""
    return HTMLResponse(resources.files(__name__).joinpath("index.html").read_text(encoding="utf-8"))
