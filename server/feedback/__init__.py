"""Citizen feedback (phản ánh, kiến nghị, issue 17): categories (Open311 services), intake,
lifecycle with working-day limits, forwarding over the axis, publication and rating.

See docs/feedback.md. Modules: ``categories``, ``photos``, ``intake``, ``lifecycle``,
``moves`` (moves, moderation, rating, reading), ``forwarding`` (over the axis), ``views``
(what officers, the sender and the public see), ``errors``.
"""
