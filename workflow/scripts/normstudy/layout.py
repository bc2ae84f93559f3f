"""Where each package module's file lives: the wings are folders, and a module's name is unique across them."""

from __future__ import annotations

import functools
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


@functools.cache
def module_files(package_dir: Path = PACKAGE_DIR) -> dict[str, Path]:
    """Module name -> its file, for every module of the package (wing `__init__` files apart); read once per folder,
    since every rule asks it while the workflow is parsed."""
    files: dict[str, Path] = {}
    for path in sorted(package_dir.rglob("*.py")):
        if path.stem == "__init__":
            continue
        if path.stem in files:
            raise ValueError(f"two package modules named {path.stem}: {files[path.stem]} and {path}")
        files[path.stem] = path
    return files


def package_files(names: tuple[str, ...] | list[str], package_dir: Path = PACKAGE_DIR) -> list[Path]:
    """The files of the modules `names`, each after the `__init__.py` of every folder above it (importing a module runs
    them), each with
    the C++ source it builds, if any (`ghost_kernel.cpp` beside `ghost_kernel.py`)."""
    files = module_files(package_dir)
    unknown = [name for name in names if name not in files]
    if unknown:
        raise ValueError(f"no package module named {', '.join(unknown)}; known: {', '.join(sorted(files))}")
    out = [package_dir / "__init__.py"]
    for name in names:
        folder, inits = files[name].parent, []
        while folder != package_dir:  # a registry module sits two folders down (data/sets/mnist.py)
            inits.insert(0, folder / "__init__.py")
            folder = folder.parent
        out += [*inits, files[name]]
        out += [source for source in [files[name].with_suffix(".cpp")] if source.exists()]
    return list(dict.fromkeys(out))
