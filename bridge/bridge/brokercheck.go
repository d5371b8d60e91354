package bridge

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tempwatch/tempwatch/bridge/metrics"
	"github.com/tempwatch/tempwatch/shared/config"
)

// BrokerLimits is what the operator says the broker is configured with.
// MQTT 3.1.1 carries no receive-maximum and no queue size, so the
// bridge cannot read the broker's window or queue over MQTT; the operator
// states the window (BROKER_MAX_INFLIGHT: Mosquitto's
// max_inflight_messages, EMQX's mqtt.max_inflight) and the bridge checks it
// against what it needs. 0 means not stated: nothing is checked.
type BrokerLimits struct {
	MaxInFlight int
}

func loadBrokerLimits(r *config.Reader) BrokerLimits {
	return BrokerLimits{MaxInFlight: r.Int("BROKER_MAX_INFLIGHT", 0, 0, 65535)}
}

// checkBroker warns when the broker's stated window is smaller than
// MAX_IN_FLIGHT — batches then never fill, and throughput is bounded by
// window / invoke latency — and exports the stated window and the
// shortfall, so an alert can fire on tempwatch_bridge_broker_window_short.
func (c Config) checkBroker(m *metrics.Metrics, log *slog.Logger) {
	stated := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "tempwatch_bridge", Name: "broker_max_inflight",
		Help: "The broker's in-flight window as stated by BROKER_MAX_INFLIGHT (0: not stated)."})
	short := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "tempwatch_bridge", Name: "broker_window_short",
		Help: "Messages by which the stated broker window falls short of MAX_IN_FLIGHT (0: it covers it, or is not stated)."})
	m.Register(stated, short)
	stated.Set(float64(c.Broker.MaxInFlight))
	switch {
	case c.Broker.MaxInFlight == 0:
		log.Info("broker window not stated (BROKER_MAX_INFLIGHT): the broker must allow MAX_IN_FLIGHT unacknowledged messages",
			"max_in_flight", c.MaxInFlight)
	case c.Broker.MaxInFlight < c.MaxInFlight:
		short.Set(float64(c.MaxInFlight - c.Broker.MaxInFlight))
		log.Warn("the broker's in-flight window is smaller than MAX_IN_FLIGHT: batches stop at the window and wait for acks",
			"broker_max_inflight", c.Broker.MaxInFlight, "max_in_flight", c.MaxInFlight)
	}
}
