"""The contracts lint clean, the generated code matches them, and every service is there."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from google.protobuf import descriptor, descriptor_pool

ROOT = Path(__file__).resolve().parents[2]
PROTO_DIR = ROOT / "proto"
PACKAGE_DIR = ROOT / "ecommerce"
GEN_PROTOS = ROOT / "scripts" / "gen_protos.py"
LINT_PROTOS = ROOT / "scripts" / "lint_protos.py"

# Every RPC that callers rely on. A service may gain RPCs without touching this table;
# losing one breaks its callers, which is what these tests catch.
EXPECTED_SERVICES: dict[str, set[str]] = {
    "ecommerce.user.v1.UserService": {
        "Register",
        "GetCurrentUser",
        "UpdateCurrentUser",
        "ChangePassword",
        "ListUsers",
        "GetUser",
        "UpdateUser",
        "DeactivateUser",
        "IsUserActive",
    },
    "ecommerce.user.v1.AuthService": {
        "Login",
        "RefreshToken",
        "Logout",
        "IssueServiceToken",
        "GetJwks",
    },
    "ecommerce.product.v1.ProductService": {
        "CreateCategory",
        "GetCategory",
        "ListCategories",
        "UpdateCategory",
        "DeleteCategory",
        "CreateProduct",
        "GetProduct",
        "ListProducts",
        "UpdateProduct",
        "DeleteProduct",
        "CheckStock",
        "ReserveStock",
        "ReleaseStock",
    },
    "ecommerce.order.v1.OrderService": {
        "CreateOrder",
        "GetOrder",
        "ListOrders",
        "CancelOrder",
        "ShipOrder",
        "GetOrderTimeline",
    },
    "ecommerce.order.v1.CartService": {
        "GetCart",
        "SetCartItem",
        "RemoveCartItem",
        "ClearCart",
        "CheckoutCart",
    },
    "ecommerce.order.v1.AnalyticsService": {"GetTopProducts", "GetSales"},
    "ecommerce.payment.v1.PaymentService": {"GetPayment"},
    "ecommerce.notification.v1.NotificationService": {
        "ListNotifications",
        "GetOrderNotifications",
    },
}

FLOATING_TYPES = frozenset(
    {descriptor.FieldDescriptor.TYPE_FLOAT, descriptor.FieldDescriptor.TYPE_DOUBLE}
)


def run_script(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run one of the scripts/ entry points with this interpreter, capturing its output."""
    return subprocess.run(
        [sys.executable, str(script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def output_of(result: subprocess.CompletedProcess[str]) -> str:
    """Both streams of a finished script, for assertion messages."""
    return f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"


def generated_module_names() -> list[str]:
    """Dotted names of every generated Python module under ecommerce/."""
    return sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for path in PACKAGE_DIR.rglob("*_pb2*.py")
    )


@pytest.fixture(scope="module")
def generated_modules() -> dict[str, ModuleType]:
    """Every generated module, imported, which also loads its descriptors into the pool."""
    return {name: importlib.import_module(name) for name in generated_module_names()}


def all_messages(file: descriptor.FileDescriptor) -> Iterator[descriptor.Descriptor]:
    """Every message of a file, nested ones included."""
    pending = list(file.message_types_by_name.values())
    while pending:
        message = pending.pop()
        yield message
        pending.extend(message.nested_types)


def test_buf_lint_is_clean() -> None:
    result = run_script(LINT_PROTOS)
    assert result.returncode == 0, output_of(result)


def test_generated_code_matches_protos() -> None:
    result = run_script(GEN_PROTOS, "--check")
    assert result.returncode == 0, output_of(result)


def test_every_proto_has_an_importable_module(generated_modules: dict[str, ModuleType]) -> None:
    expected = {
        ".".join(path.relative_to(PROTO_DIR).with_suffix("").parts) + "_pb2"
        for path in PROTO_DIR.rglob("*.proto")
    }
    assert expected, "no .proto files found"
    assert expected <= generated_modules.keys()


@pytest.mark.parametrize("service_name", sorted(EXPECTED_SERVICES))
def test_service_has_its_methods(
    service_name: str, generated_modules: dict[str, ModuleType]
) -> None:
    service = descriptor_pool.Default().FindServiceByName(service_name)
    methods = {method.name for method in service.methods}
    missing = EXPECTED_SERVICES[service_name] - methods
    assert not missing, f"{service_name} lacks {sorted(missing)}"

    grpc_module = generated_modules[
        service.file.name.removesuffix(".proto").replace("/", ".") + "_pb2_grpc"
    ]
    assert hasattr(grpc_module, f"{service.name}Stub")
    assert hasattr(grpc_module, f"add_{service.name}Servicer_to_server")


def test_no_field_is_a_float(generated_modules: dict[str, ModuleType]) -> None:
    # Money and quantities must be exact; a float anywhere in a contract is a bug.
    floats = [
        field.full_name
        for module in generated_modules.values()
        if module.__name__.endswith("_pb2")
        for message in all_messages(module.DESCRIPTOR)
        for field in message.fields
        if field.type in FLOATING_TYPES
    ]
    assert floats == []


def copy_tree(destination: Path) -> None:
    """Copy proto/ and ecommerce/ into destination, leaving byte-code caches behind."""
    shutil.copytree(PROTO_DIR, destination / "proto")
    shutil.copytree(
        PACKAGE_DIR, destination / "ecommerce", ignore=shutil.ignore_patterns("__pycache__")
    )


def test_check_detects_drift(tmp_path: Path) -> None:
    copy_tree(tmp_path)
    untouched = run_script(GEN_PROTOS, "--check", "--root", str(tmp_path))
    assert untouched.returncode == 0, output_of(untouched)

    money = tmp_path / "proto" / "ecommerce" / "common" / "v1" / "money.proto"
    text = money.read_text(encoding="utf-8").rstrip()
    assert text.endswith("}")
    money.write_text(text[:-1] + "  // A field the check must notice.\n  string note = 3;\n}\n")

    drifted = run_script(GEN_PROTOS, "--check", "--root", str(tmp_path))
    assert drifted.returncode == 1, output_of(drifted)
    assert "ecommerce/common/v1/money_pb2.py" in drifted.stderr


def test_generation_removes_stale_modules(tmp_path: Path) -> None:
    copy_tree(tmp_path)
    stale = tmp_path / "ecommerce" / "common" / "v1" / "retired_pb2.py"
    stale.write_text("", encoding="utf-8")

    generated = run_script(GEN_PROTOS, "--root", str(tmp_path))
    assert generated.returncode == 0, output_of(generated)
    assert not stale.exists()
    checked = run_script(GEN_PROTOS, "--check", "--root", str(tmp_path))
    assert checked.returncode == 0, output_of(checked)
