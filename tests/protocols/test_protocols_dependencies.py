"""protocols runs on the Android PDA too: it may import only stdlib, cryptography and biip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# What protocols may pull in besides the standard library. cryptography loads OpenSSL through
# its Rust bindings, which register the cffi modules _cffi_backend and _openssl; biip imports
# only the standard library.
ALLOWED = {"protocols", "cryptography", "biip", "_cffi_backend", "_openssl"}


def top_level_modules(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return {name.split(".")[0] for name in json.loads(out.stdout)}


def test_contract_modules_import_only_stdlib_cryptography_and_biip() -> None:
    # Modules present before anything is imported come from site hooks (.pth files), not
    # from protocols.
    startup = top_level_modules("import sys, json; print(json.dumps(sorted(sys.modules)))")
    loaded = top_level_modules(
        "import protocols.codes, protocols.messages, protocols.topics, sys, json; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    foreign = loaded - startup - set(sys.stdlib_module_names) - ALLOWED
    assert foreign == set()
    assert {"protocols", "cryptography", "biip"} <= loaded


def test_every_protocols_module_imports_only_stdlib_cryptography_and_biip() -> None:
    # Covers modules added to the package later, too.
    code = (
        "import importlib, json, pkgutil, sys\n"
        "before = set(sys.modules)\n"
        "import protocols\n"
        "names = [m.name for m in pkgutil.walk_packages(protocols.__path__, 'protocols.')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    loaded = top_level_modules(code)
    assert loaded - set(sys.stdlib_module_names) - ALLOWED == set()
    assert "protocols" in loaded
