"""WSGI entry for `gunicorn api.wsgi:application` (settings from the environment)."""

from bo.wsgi import application as application
