"""Only what pyproject.toml cannot say: the repository's top-level `tasks/` and
`search_spaces/` folders are installed under `tuner` (`tuner.tasks`, `tuner.search_spaces`),
so `pip install` adds no generic top-level name that a user's own `tasks.py` would shadow.
Every subpackage is found, not listed (a listed set once left some out of the wheel)."""

from setuptools import find_packages, setup

MOVED = {"tuner.tasks": "tasks", "tuner.search_spaces": "search_spaces"}


def moved_packages(name: str, folder: str) -> list[str]:
    return [name] + [f"{name}.{sub}" for sub in find_packages(where=folder)]


setup(
    packages=find_packages(include=["tuner", "tuner.*"])
    + [package for name, folder in MOVED.items() for package in moved_packages(name, folder)],
    package_dir=MOVED,
)
