"""The README's diagram of the packages says which imports which, exactly as the code does."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from tests.import_graph import PACKAGES, ROOT, SCRIPTS, Graph, find_modules, import_graph

README = ROOT / "README.md"
# The subpackages of the shared runtime, each a layer of its own in the diagram. Its top level
# (settings, logging, errors, ...) is the layer named `meshkit`, and `meshkit.service`, which
# assembles a process from the subpackages, is one of its own above them.
RUNTIME_LAYERS = ("meshkit.service",)
ARROW = re.compile(r"^(?P<package>[\w.]+)\s+──►\s+(?P<imports>.+)$")
NONE_OF_OURS = "(none of ours)"


def diagram(readme: str) -> list[tuple[str, set[str]]]:
    """Each line of the diagram under "### Packages": a package and what it imports, in order."""
    section = readme.split("### Packages", 1)[1]
    block = section.split("```text", 1)[1].split("```", 1)[0]
    lines: list[tuple[str, set[str]]] = []
    # A line that starts with blanks goes on with the imports of the line above.
    joined = re.sub(r",\n\s+", ", ", block.strip())
    for line in joined.splitlines():
        match = ARROW.match(line.strip())
        assert match, f"not a line of the diagram: {line!r}"
        imports = match["imports"].strip()
        targets = (
            set() if imports == NONE_OF_OURS else {name.strip() for name in imports.split(",")}
        )
        lines.append((match["package"], targets))
    return lines


def layer_of(module: str, layers: set[str]) -> str:
    """The longest layer name that is `module` or a package above it."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        name = ".".join(parts[:end])
        if name in layers:
            return name
    raise AssertionError(f"{module} is in no package of the diagram")


def layer_imports(graph: Graph, layers: set[str]) -> Mapping[str, set[str]]:
    """What each layer imports of the others, from the imports of its modules."""
    found: dict[str, set[str]] = {layer: set() for layer in layers}
    for module, edges in graph.items():
        source = layer_of(module, layers)
        for target in edges:
            other = layer_of(target, layers)
            if other != source:
                found[source].add(other)
    return found


def test_the_readme_diagram_names_every_import_between_packages() -> None:
    drawn = diagram(README.read_text(encoding="utf-8"))
    layers = {package for package, _ in drawn}
    modules = find_modules(ROOT, [*PACKAGES, "localmesh"], SCRIPTS)
    subpackages = {
        ".".join(path.relative_to(ROOT).parts[:2])
        for path in (ROOT / "meshkit").glob("*/__init__.py")
    }
    assert subpackages | set(RUNTIME_LAYERS) | {"meshkit"} <= layers, "a package is not drawn"
    ours = {module: path for module, path in modules.items() if module.split(".")[0] in layers}
    actual = layer_imports(import_graph(ours), layers)

    assert {package: targets for package, targets in drawn} == actual


def test_no_package_imports_one_drawn_above_it() -> None:
    drawn = diagram(README.read_text(encoding="utf-8"))
    for position, (package, targets) in enumerate(drawn):
        above = {name for name, _ in drawn[: position + 1]}
        assert not targets & above, f"{package} imports {targets & above}, drawn above it"


def test_a_diagram_that_misses_an_import_is_caught(tmp_path: Path) -> None:
    readme = "### Packages\n\n```text\napp ──► (none of ours)\nlib ──► (none of ours)\n```\n"
    (tmp_path / "app").mkdir()
    (tmp_path / "lib").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("from lib import thing\n")
    (tmp_path / "lib" / "__init__.py").write_text("thing = 1\n")
    drawn = dict(diagram(readme))
    graph = import_graph(find_modules(tmp_path, ["app", "lib"], "scripts"))

    assert layer_imports(graph, set(drawn)) == {"app": {"lib"}, "lib": set()} != drawn
