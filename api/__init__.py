"""Read tables → HTTP: the Falcon admin API served by gunicorn."""
