"""Built-in configurations, registered through the same hooks as any installed plugin.

:mod:`finetunekit.builtin.amazon` holds everything specific to the reference task (the
AmazonTitles catalogue): its template sets, response formatter, cleaning rules and the shipped
sample. Nothing else in finetunekit knows about Amazon.
"""
