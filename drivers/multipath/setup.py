import pathlib
import re

import setuptools

# The version of jdss is kept in one place: jdss/__init__.py.
CORE = pathlib.Path(__file__).resolve().parents[2] / "jdss" / "__init__.py"
setuptools.setup(version=re.search(r'__version__ = "([^"]+)"',
                                   CORE.read_text()).group(1))
