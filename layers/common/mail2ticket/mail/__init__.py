"""Mail understanding: pure functions, bytes in and dataclasses out.

Import from the submodules: a re-export here would load the HTML parser with the poller's light `headers`.
"""
