"""Errors a user can act on: each names the file, field, table or row at fault."""


class StudyError(Exception):
    """A study cannot run as declared (bad study file, bad input data, infeasible budget)."""
