"""Interchange: NIR export and import, NeuroML2/LEMS export, a stateful ONNX step, each with a fidelity report.

See docs/interop.md.  Each converter needs its extra (`pip install 'circuitdsl[interop]'`); nothing here is
imported by `import circuitdsl`.
"""
