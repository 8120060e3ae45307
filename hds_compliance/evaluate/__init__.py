"""Evaluate: pure functions from captures and the catalogue to verdicts, host by host and across the fleet."""

from hds_compliance.evaluate.engine import Evaluator, applies, evaluate, host_info, left_out, plan_facts

__all__ = ["Evaluator", "applies", "evaluate", "host_info", "left_out", "plan_facts"]
