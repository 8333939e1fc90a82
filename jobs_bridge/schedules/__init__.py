"""Schedules: cron time tables that submit a stored request (a job today, a pipeline later)."""
