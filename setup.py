"""Maps the repository's top-level folders onto the ``driftloop.*`` import packages.

``platform/`` has no ``__init__.py`` on purpose: a regular package of that name would shadow the
standard library's ``platform`` module for anything run from the repository root. setuptools'
declarative config cannot list namespace sub-packages under a renamed root, so they are listed
here from the folders themselves.
"""

from setuptools import find_namespace_packages, setup

IMPORT_ROOTS = {
    "driftloop.platform": "platform",
    "driftloop.workers": "workers",
    "driftloop.labeling": "labeling",
    "driftloop.migrations": "migrations",
}


def _packages() -> list[str]:
    names = []
    for name, folder in IMPORT_ROOTS.items():
        names.append(name)
        names += [f"{name}.{sub}" for sub in find_namespace_packages(where=folder, exclude=["*__pycache__*"])]
    return names


setup(
    packages=_packages(),
    package_dir=IMPORT_ROOTS,
    package_data={"driftloop.migrations": ["script.py.mako"], "driftloop.labeling.server": ["requirements.txt"]},
)
