"""MkDocs hook (mkdocs.yml ``hooks:``): pages made from files outside ``docs/`` at build time.

- ``http-reference.md``: the placeholder ``<!-- openapi -->`` is replaced by the committed OpenAPI
  document (``openapi/openapi.json``) rendered as Markdown: every operation with its parameters,
  request body and responses, then every schema with its fields. The site also serves the
  document itself as ``openapi.json``. Nothing is fetched from a CDN, at build time or in the
  browser.
- ``index.md``: the placeholder ``<!-- readme -->`` is replaced by the repository's README.md
  (less its "Documentation" and "License" sections, which the home page says its own way), with
  its links into ``docs/`` made relative to the site: one text for both front doors.
- the API reference: the docstrings' Sphinx roles (``:func:`kernel```, ``:class:`~a.b.C```)
  are shown as code, without the role (``~`` keeps the last name only, as in Sphinx).
- ``bench/``: ``bench/README.md`` with the result files and figures it links to, so that the
  benchmarks page links to the measurements as they are committed.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
OPENAPI = ROOT / "openapi" / "openapi.json"
BENCH = ROOT / "bench"
PLACEHOLDER = "<!-- openapi -->"
README = ROOT / "README.md"
README_PLACEHOLDER = "<!-- readme -->"
README_ONLY = ("## Documentation", "## License")
SPHINX_ROLE = re.compile(r":(?:func|class|meth|attr|mod|data|exc|obj):<code>(~?)([^<]*)</code>")
METHODS = ("get", "post", "put", "patch", "delete")
ERROR_SCHEMA = "[ErrorOut](#errorout)"


def on_files(files: Files, config: Any) -> Files:
    """Add ``openapi.json`` and the benchmark pages and figures to the site."""
    files.append(File.generated(config, "openapi.json", abs_src_path=str(OPENAPI)))
    for path in sorted(BENCH.iterdir()):
        if path.suffix in (".md", ".png"):
            files.append(File.generated(config, f"bench/{path.name}", abs_src_path=str(path)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Render the OpenAPI document and the README where a page asks for them."""
    if README_PLACEHOLDER in markdown:
        markdown = markdown.replace(README_PLACEHOLDER, readme_for_site(README.read_text()))
    if PLACEHOLDER in markdown:
        markdown = markdown.replace(PLACEHOLDER, render(json.loads(OPENAPI.read_text())))
    return markdown


def on_page_content(html: str, page: Any, config: Any, files: Files) -> str:
    """Sphinx roles left in rendered docstrings become plain code."""
    def plain(match: re.Match) -> str:
        name = match.group(2).rsplit(".", 1)[-1] if match.group(1) else match.group(2)
        return f"<code>{name}</code>"

    return SPHINX_ROLE.sub(plain, html)


def readme_for_site(text: str) -> str:
    """README.md without its site-only sections, its ``docs/`` links relative to the site."""
    for heading in README_ONLY:
        start = text.find(heading)
        if start >= 0:
            end = text.find("\n## ", start + len(heading))
            text = text[:start] + (text[end + 1:] if end >= 0 else "")
    return text.replace("](docs/", "](")


def render(doc: dict) -> str:
    """The OpenAPI document as Markdown: operations grouped by path, then the schemas."""
    schemas = doc.get("components", {}).get("schemas", {})
    out = [f"Version {doc['info']['version']} of the API (OpenAPI {doc['openapi']}).", "",
           doc["info"].get("description", ""), "", "## Operations", ""]
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                out.extend(_operation(method, path, item[method]))
    out.extend(["## Schemas", ""])
    for name, schema in schemas.items():
        out.extend(_schema(name, schema))
    return "\n".join(out)


def _operation(method: str, path: str, op: dict) -> list[str]:
    lines = [f"### `{method.upper()} {path}`", "", op.get("description") or op.get("summary", ""), ""]
    params = op.get("parameters", [])
    if params:
        lines += ["| parameter | in | type | required | meaning |", "| --- | --- | --- | --- | --- |"]
        for p in params:
            lines.append(f"| `{p['name']}` | {p['in']} | {_type(p.get('schema', {}))} | "
                         f"{'yes' if p.get('required') else 'no'} | {_cell(p.get('description', ''))} |")
        lines.append("")
    body = op.get("requestBody")
    if body:
        kinds = ", ".join(f"`{media}` ({_type(spec.get('schema', {}))})" for media, spec in body["content"].items())
        lines += [f"**Request body**: {kinds}.", ""]
    lines += ["| status | meaning | body |", "| --- | --- | --- |"]
    errors = []
    for status, response in op.get("responses", {}).items():
        content = response.get("content", {})
        kinds = ", ".join(f"`{media}` {_type(spec.get('schema', {}))}".rstrip() for media, spec in content.items())
        if status >= "400" and ERROR_SCHEMA in kinds:
            errors.append(status)
        else:
            lines.append(f"| {status} | {_cell(response.get('description', ''))} | {kinds} |")
    if errors:
        statuses = ", ".join(errors)
        lines.append(f"| {statuses} | errors (see [Errors](http.md#errors)) | `application/json` {ERROR_SCHEMA} |")
    return lines + [""]


def _schema(name: str, schema: dict) -> list[str]:
    lines = [f"### {name}", ""]
    if schema.get("description"):
        lines += [schema["description"], ""]
    props = schema.get("properties")
    if props:
        required = set(schema.get("required", []))
        lines += ["| field | type | required | meaning |", "| --- | --- | --- | --- |"]
        for field, spec in props.items():
            meaning = spec.get("description", "")
            if "default" in spec:
                meaning = f"{meaning} Default: `{json.dumps(spec['default'])}`.".strip()
            lines.append(f"| `{field}` | {_type(spec)} | {'yes' if field in required else 'no'} | {_cell(meaning)} |")
    elif "enum" in schema:
        lines.append("One of " + ", ".join(f"`{json.dumps(v)}`" for v in schema["enum"]) + ".")
    else:
        lines.append(f"Type: {_type(schema)}.")
    return lines + [""]


def _type(schema: dict) -> str:
    """A schema's type in words: `[SpectraIn](#spectrain)`, `array of (number or null)`, `string or null`."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return " or ".join(_type(s) for s in schema[key])
    kind = schema.get("type", "")
    if kind == "array":
        item = _type(schema.get("items", {}))
        return f"array of ({item})" if " or " in item else f"array of {item}"
    if "enum" in schema:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    return kind or "any"


def _cell(text: str) -> str:
    """Text fit for one table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")
