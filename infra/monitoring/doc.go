// Package monitoring tests the monitoring files beside it: prometheus.yml and
// its alert rules (promtool check and test rules), and the Grafana dashboard,
// every query of which runs against a real Prometheus that scrapes a devstack
// under load. The package has no code of its own.
package monitoring
