"""Packaging. twisted.plugins is listed by hand (it has no __init__.py on
purpose: it is Twisted's namespace), so the plugin always lands in the wheel."""
from setuptools import find_packages, setup

setup(
    name="personium-dav",
    version="0.1.0",
    description="A WebDAV server on Twisted hosting Personium boxes",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(exclude=["tests*"]) + ["twisted.plugins"],
    include_package_data=False,
    # the service engine's JS prelude is not a .py file: ship it by name
    package_data={"personium_dav.engine": ["prelude.js", "prelude_p.js"]},
    # quickjs-ng: the service-script engine (QuickJS); regex: route matching
    # with a time-out (engine/routes.py)
    # twisted: web/shims.py leans on twisted.web internals that these keep
    # (tests/test_shims.py checks the one installed)
    install_requires=["twisted>=24.7,<27", "lxml", "zope.interface", "argon2-cffi", "pyjwt",
                      "quickjs-ng>=0.17,<0.18", "regex>=2023.0"],
    # webdav4 and webdavclient3: real WebDAV clients the suite runs against
    # the server (tests/test_python_clients.py)
    extras_require={"test": ["treq", "hypothesis", "webdav4", "webdavclient3"]},
)
