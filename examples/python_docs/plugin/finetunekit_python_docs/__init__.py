"""finetunekit plugin of the python-docs example (the Python standard library's docstrings as a FAQ).

The components live in :mod:`finetunekit_python_docs.plugin`, the module named by this
distribution's ``finetunekit`` entry point.
"""

__version__ = "0.1.0"
