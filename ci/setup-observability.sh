# Sourced by ci/setup.sh: a real Prometheus server scrapes Ember in the metrics integration test.
need_command prometheus prometheus
