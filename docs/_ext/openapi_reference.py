"""The REST API reference, rendered as Markdown from the OpenAPI document.

``openapi_reference_pages`` in conf.py maps a page to an OpenAPI 3.0 JSON file; the
rendered reference is appended to that page's own text when Sphinx reads it, so the page
keeps an introduction written by hand and the reference always matches the document the
server serves. Descriptions in OpenAPI are CommonMark and are kept as such, except that a
``<`` outside code is text here (``<base_url>``), not HTML.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

METHODS = ("get", "put", "post", "patch", "delete")
# What a schema may say about its values, in the order it is shown.
CONSTRAINTS = (
    ("minLength", "at least {} characters"),
    ("maxLength", "at most {} characters"),
    ("minimum", "from {}"),
    ("maximum", "to {}"),
    ("pattern", "matching `{}`"),
    ("format", "format {}"),
)
# OpenAPI 3.0's exclusiveMinimum is a flag on minimum.
EXCLUSIVE_MINIMUM = "above {}"


def render(document: dict) -> str:
    """The whole reference: overview, one section per operation, one per schema."""
    info = document["info"]
    out = [
        "## Overview",
        "",
        f"From the OpenAPI {document['openapi']} document (`info.version` "
        f"{info['version']}), which the server also serves at `GET openapi.json`.",
        "",
        text(info.get("description", "")),
        "",
    ]
    for server in document.get("servers", []):
        out += [f"Base path: `{server['url']}`. {text(server.get('description', ''))}", ""]
    for name, scheme in document.get("components", {}).get("securitySchemes", {}).items():
        where = f"the `{scheme['name']}` {scheme['in']}" if "name" in scheme else scheme["type"]
        out += [f"Authentication ({name}): {where}, {text(scheme.get('description', ''))}", ""]
    out += ["## Operations", ""]
    for path, item in document["paths"].items():
        shared = item.get("parameters", [])
        for method in METHODS:
            if method in item:
                out += operation(method, path, item[method], shared)
    out += ["## Schemas", ""]
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        out += [f"### {name}", ""]
        if "description" in schema:
            out += [text(schema["description"]), ""]
        out += [f"{type_text(schema)}.", ""]
        out += properties(schema)
    return "\n".join(out) + "\n"


def operation(method: str, path: str, op: dict, shared: list[dict]) -> list[str]:
    """The section of one operation."""
    out = [f"### `{method.upper()} {path}`", "", f"{text(op.get('summary', ''))}", ""]
    if "description" in op:
        out += [text(op["description"]), ""]
    parameters = shared + op.get("parameters", [])
    if parameters:
        out += ["**Parameters**", ""]
        for parameter in parameters:
            required = ", required" if parameter.get("required") else ""
            out += bullet(
                f"`{parameter['name']}` ({parameter['in']}{required}): "
                f"{type_text(parameter['schema'])}. {text(parameter.get('description', ''))}"
            )
        out.append("")
    body = op.get("requestBody")
    if body:
        required = ", required" if body.get("required") else ""
        for media, content in body["content"].items():
            out += [f"**Request body** (`{media}`{required}): {type_text(content['schema'])}.", ""]
    out += ["**Responses**", ""]
    for status, response in op["responses"].items():
        line = f"**{status}**: {text(response['description'])}"
        for media, content in response.get("content", {}).items():
            line += f" `{media}`"
            if "schema" in content:
                line += f": {type_text(content['schema'])}."
        for header, spec in response.get("headers", {}).items():
            line += f" Header `{header}` ({type_text(spec['schema'])}): {text(spec['description'])}"
        out += bullet(line)
        for content in response.get("content", {}).values():
            if "example" in content:
                example = content["example"].rstrip("\n").split("\n")
                out += indented(["Example:", "", "```", *example, "```"])
    return [*out, ""]


def properties(schema: dict) -> list[str]:
    """A bullet per property of an object schema (nested objects indented)."""
    required = set(schema.get("required", []))
    out = []
    for name, prop in schema.get("properties", {}).items():
        mark = ", required" if name in required else ""
        line = f"`{name}` ({type_text(prop)}{mark})"
        if "description" in prop:
            line += f": {text(prop['description'])}"
        if "example" in prop:
            line += f" Example: `{json.dumps(prop['example'])}`."
        out += bullet(line)
        if "properties" in prop:
            out += indented(properties(prop))
    if schema.get("additionalProperties") is False and schema.get("properties"):
        out += bullet("No other properties.")
    return [*out, ""] if out else []


def type_text(schema: dict) -> str:
    """A schema's type in words: ``string, at most 200 characters, or null``."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        kind = f"[{name}](#{name.lower()})"
    elif "oneOf" in schema:
        kind = " or ".join(type_text(option) for option in schema["oneOf"])
    elif schema.get("type") == "array":
        kind = f"array of {type_text(schema['items'])}"
    else:
        kind = schema.get("type", "any value")
    details = []
    if "enum" in schema:
        details.append("one of " + ", ".join(f"`{json.dumps(v)}`" for v in schema["enum"]))
    for key, template in CONSTRAINTS:
        if key in schema:
            if key == "minimum" and schema.get("exclusiveMinimum"):
                template = EXCLUSIVE_MINIMUM
            details.append(template.format(schema[key]))
    if "default" in schema:
        details.append(f"default `{json.dumps(schema['default'])}`")
    if schema.get("nullable"):
        details.append("or null")
    return ", ".join([kind, *details])


def text(markdown: str) -> str:
    """OpenAPI's CommonMark, with ``<`` outside code taken as text rather than HTML."""
    out = []
    for line in markdown.split("\n"):
        if line.startswith("    "):
            out.append(line)
            continue
        parts = re.split(r"(`[^`]*`)", line)
        out.append("".join(p if p.startswith("`") else p.replace("<", r"\<") for p in parts))
    return "\n".join(out)


def bullet(line: str) -> list[str]:
    """A list item; following lines of a multi-line text are indented under it."""
    first, *rest = line.split("\n")
    return [f"- {first}", *indented(rest)]


def indented(lines: list[str]) -> list[str]:
    return [f"  {line}" if line else "" for line in lines]


def append_reference(app, docname: str, source: list[str]) -> None:
    """Sphinx ``source-read``: append the reference to the pages that ask for one."""
    path = app.config.openapi_reference_pages.get(docname)
    if path is not None:
        app.env.note_dependency(str(path))
        source[0] += "\n" + render(json.loads(Path(path).read_text()))


def setup(app):
    app.add_config_value("openapi_reference_pages", {}, "env")
    app.connect("source-read", append_reference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
