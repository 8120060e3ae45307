"""``python -m hds_compliance.collect``: the collector worker process."""

from hds_compliance.collect.worker import main

main()
