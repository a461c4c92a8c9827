"""Notification service: emails for order and payment events."""
