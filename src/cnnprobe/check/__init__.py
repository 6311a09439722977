"""``cnnprobe check``: architecture rules for CI.

``rules`` holds the registry (one small class per rule, its docstring is its documentation),
``config`` reads ``[tool.cnnprobe.check]`` / ``cnnprobe.toml``, ``runner`` evaluates models (in
parallel) and ``formatters`` writes text, JSON, JUnit XML, SARIF, GitHub annotations or Markdown.
"""
