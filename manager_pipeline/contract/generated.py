"""What is generated from the schema, so that it cannot drift from it:
the Terraform declarations of the optional sections, and the field reference in docs/contract.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from manager_pipeline.contract.schema import ALIAS_OF, SCHEMA, SECRET, SECTIONS, UNSUPPORTED

# Fields Terraform never receives: resolved to their canonical name, kept by the manager, or only `false`.
_NOT_FOR_TERRAFORM = (ALIAS_OF, SECRET, UNSUPPORTED)

TERRAFORM_HEADER = (
    "# Generated from the variables.yml schema by `manager-pipeline schema --terraform`; do not edit.\n"
    "# The optional sections of variables.yml, as validated: null when a source leaves one out.\n"
)
README_START = "<!-- variables-reference:start -->"
README_END = "<!-- variables-reference:end -->"


def hcl_type(schema: dict[str, Any], indent: int = 2) -> str:
    """The Terraform type of a JSON Schema node; object attributes are all optional."""
    if "enum" in schema:
        return "number" if all(isinstance(v, int) for v in schema["enum"]) else "string"
    kind = schema.get("type")
    if kind == "object":
        properties = {
            name: field
            for name, field in schema.get("properties", {}).items()
            if not any(mark in field for mark in _NOT_FOR_TERRAFORM)
        }
        if properties:
            pad = " " * (indent + 2)
            width = max(len(name) for name in properties)
            lines = [
                f"{pad}{name:<{width}} = optional({hcl_type(field, indent + 2)})" for name, field in properties.items()
            ]
            return "object({\n" + "\n".join(lines) + "\n" + " " * indent + "})"
        extra = schema.get("additionalProperties")
        return f"map({hcl_type(extra, indent)})" if isinstance(extra, dict) else "any"
    if kind == "array":
        return f"list({hcl_type(schema['items'], indent)})"
    if isinstance(kind, list):
        # A string or `false` (the original pipeline's "none"): Terraform gets the string or null.
        return "string" if "string" in kind else "any"
    return {"integer": "number", "number": "number", "boolean": "bool", "string": "string"}.get(kind, "any")


def terraform_sections() -> str:
    blocks = [TERRAFORM_HEADER]
    for name, schema in SECTIONS.items():
        blocks.append(
            f'variable "{name}" {{\n'
            f"  description = {json.dumps(schema['description'])}\n"
            f"  type        = {hcl_type(schema, 2)}\n"
            "  default     = null\n"
            "}\n"
        )
    return "\n".join(blocks)


def _rules(field: dict[str, Any]) -> str:
    rules = []
    if ALIAS_OF in field:
        return "the same"
    if "enum" in field:
        values = field.get("x-supported", field["enum"])
        rules.append("one of " + ", ".join(f"`{v}`" for v in values))
    elif field.get("type") == "array":
        rules.append("list")
    elif field.get("type"):
        rules.append(field["type"] if isinstance(field["type"], str) else " or ".join(field["type"]))
    if UNSUPPORTED in field:
        return "`false` only"
    if SECRET in field:
        rules.append("a secret")
    if "minimum" in field:
        rules.append(f"{field['minimum']} to {field['maximum']}")
    if "maxProperties" in field:
        rules.append(f"at most {field['maxProperties']} entries")
    if "default" in field:
        rules.append(f"default `{json.dumps(field['default'])}`")
    return ", ".join(rules)


def _rows(schema: dict[str, Any], prefix: str, required: set[str]) -> list[str]:
    rows = []
    for name, field in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        need = "yes" if name in required else ""
        meaning = field.get("description", "")
        if ALIAS_OF in field:
            meaning = f"The original pipeline's name of `{prefix}{field[ALIAS_OF]}`; give one of the two."
        rows.append(f"| `{path}` | {need} | {_rules(field)} | {meaning} |")
        if field.get("properties"):
            rows += _rows(field, f"{path}.", set(field.get("required", [])))
        elif isinstance(field.get("items"), dict) and field["items"].get("properties"):
            rows += _rows(field["items"], f"{path}[].", set(field["items"].get("required", [])))
        elif isinstance(field.get("additionalProperties"), dict) and field["additionalProperties"].get("properties"):
            inner = field["additionalProperties"]
            rows += _rows(inner, f"{path}.<name>.", set(inner.get("required", [])))
    return rows


def markdown_reference() -> str:
    lines = [
        README_START,
        "",
        "| field | required | type and rules | meaning |",
        "|---|---|---|---|",
        *_rows(SCHEMA, "", set(SCHEMA["required"])),
        "",
        README_END,
    ]
    return "\n".join(lines)


def write_generated(root: Path) -> None:
    """Rewrite the generated files of a manager checkout: `make generate`."""
    (root / "terraform" / "sections.tf").write_text(terraform_sections())
    (root / "schema").mkdir(exist_ok=True)
    (root / "schema" / "variables.schema.json").write_text(json.dumps(SCHEMA, indent=2) + "\n")
    readme = root / "docs" / "contract.md"
    text = readme.read_text()
    start, end = text.index(README_START), text.index(README_END) + len(README_END)
    readme.write_text(text[:start] + markdown_reference() + text[end:])


if __name__ == "__main__":
    write_generated(Path.cwd())
