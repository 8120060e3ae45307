"""The HDS control catalogue (YAML), shipped inside the package as ``hds_compliance.controls``."""
