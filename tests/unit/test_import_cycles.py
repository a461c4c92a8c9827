"""No import cycles among the modules of our packages, however an import of one is deferred."""

from __future__ import annotations

from pathlib import Path

from tests.import_graph import (
    PACKAGES,
    ROOT,
    SCRIPTS,
    describe,
    find_cycles,
    find_modules,
    import_graph,
)


def test_our_modules_import_one_another_without_a_cycle() -> None:
    known = find_modules(ROOT, PACKAGES, SCRIPTS)
    assert set(PACKAGES) <= known.keys()
    graph = import_graph(known)
    cycles = find_cycles(graph)
    assert not cycles, (
        "import cycles (move what both sides need into a module of its own, or pass it in):\n"
        + "\n".join(describe(graph, cycle, ROOT) for cycle in cycles)
    )


def test_cycles_are_found_however_the_import_is_written_or_deferred(tmp_path: Path) -> None:
    files = {
        "shop/__init__.py": "from shop.catalog import Product\n",
        "shop/catalog.py": "from . import stock\n\nProduct = object\n",
        "shop/stock.py": "def reserve():\n    from shop.catalog import Product\n",
        "shop/orders/__init__.py": "",
        "shop/orders/reads.py": (
            "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from ..orders import repo\n"
        ),
        "shop/orders/repo.py": "import shop.orders.reads as reads\nimport os.path\n",
        "shop/carts.py": "from shop import catalog, orders\nfrom shop.orders.repo import x\n",
        "tools/build.py": "import check\n",
        "tools/check.py": "from build import main\n",
    }
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    graph = import_graph(find_modules(tmp_path, ["shop"], "tools"))

    assert find_cycles(graph) == [
        ["build", "check", "build"],
        ["shop.catalog", "shop.stock", "shop.catalog"],
        ["shop.orders.reads", "shop.orders.repo", "shop.orders.reads"],
    ]
    assert graph["shop.carts"].keys() == {"shop.catalog", "shop.orders", "shop.orders.repo"}
    assert graph["shop.stock"]["shop.catalog"].deferred == "in a function"
    assert graph["shop.orders.reads"]["shop.orders.repo"].deferred == "under TYPE_CHECKING"
    assert graph["shop.orders.repo"]["shop.orders.reads"].deferred == ""
