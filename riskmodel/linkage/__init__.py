"""Linking reports of one dispute across platforms with Splink (:func:`link_reports`)."""

from .run import LinkedReports, link_reports

__all__ = ["LinkedReports", "link_reports"]
