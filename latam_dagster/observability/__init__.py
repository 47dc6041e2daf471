"""Observability of the platform: the metrics exporter, JSON logs, and request ids.

- `exporter`: a long-running process that reads RabbitMQ, the warehouse and the Dagster instance
  on an interval and serves the result as Prometheus metrics, so short-lived runs need no push
  gateway;
- `logging`: one JSON log format for every process, carrying run_id, message_id or request_id;
- `flask_logging`: request ids and one structured access line per API request.
"""
