"""hds_compliance: HDS (Hébergeur de Données de Santé) compliance as code.

The flow is load → plan → collect → evaluate → gate → report; see DESIGN.md. Only
``hds_compliance.collect`` touches hosts (through pyinfra, in a worker process).
"""

__version__ = "0.1.0"
