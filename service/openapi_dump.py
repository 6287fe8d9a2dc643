"""Write the OpenAPI document of the API: ``python -m service.openapi_dump [PATH]``.

Default PATH is ``openapi/openapi.json`` at the repository root; a test fails when the
committed file differs from what this writes.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .app import create_app
from .config import Settings

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"


def openapi_text() -> str:
    """The document a deployment with the default settings serves (none read from the environment)."""
    app = create_app(Settings.model_construct(redis_url=None))
    try:
        return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"
    finally:
        app.state.engine.close()


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    path = Path(argv[0]) if argv else DEFAULT_PATH
    path.write_text(openapi_text())
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
