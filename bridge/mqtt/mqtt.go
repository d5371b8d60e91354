// Package mqtt is the bridge's paho.mqtt.golang adapter: a QoS 1 subscription
// with a persistent session, subscribed in the on-connect handler, that hands
// every message on unacknowledged (manual acks).
package mqtt

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Options configure the subscription.
type Options struct {
	URL          string // tcp://host:1883, ssl://, ws://
	ClientID     string
	Topic        string // e.g. tempwatch/+/sensors/+/readings
	SharedGroup  string // non-empty subscribes to $share/<group>/<topic>
	CleanSession bool
	Username     string
	Password     string
	Log          *slog.Logger
}

// Message is one received publish; Ack sends its PUBACK.
type Message struct {
	Topic   string
	Payload []byte
	Dup     bool
	Ack     func()
}

// Filter is the subscription filter: the topic, or its shared form.
func (o Options) Filter() string {
	if o.SharedGroup == "" {
		return o.Topic
	}
	return "$share/" + o.SharedGroup + "/" + o.Topic
}

// Subscriber is a connected client.
type Subscriber struct {
	client paho.Client
}

// Subscribe connects and subscribes; handle is called for every message in a
// goroutine of its own (order does not matter), must not keep paho waiting
// and must eventually call Ack (or drop the message, which the broker then
// redelivers after the next reconnect). Subscribe returns once the first
// connection is up and subscribed; later losses reconnect and resubscribe by themselves.
func Subscribe(o Options, handle func(Message)) (*Subscriber, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	filter := o.Filter()
	subscribed := make(chan struct{})
	var once sync.Once
	onMessage := func(_ paho.Client, m paho.Message) {
		handle(Message{Topic: m.Topic(), Payload: m.Payload(), Dup: m.Duplicate(), Ack: m.Ack})
	}
	opts := paho.NewClientOptions().
		AddBroker(o.URL).
		SetClientID(o.ClientID).
		SetUsername(o.Username).
		SetPassword(o.Password).
		SetCleanSession(o.CleanSession).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(10 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetOrderMatters(false).
		SetAutoAckDisabled(true).
		// The bridge publishes nothing; nothing of its own to resume.
		SetMaxResumePubInFlight(1).
		SetDefaultPublishHandler(onMessage).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			o.Log.Warn("mqtt connection lost; reconnecting", "error", err)
		}).
		SetOnConnectHandler(func(c paho.Client) {
			// Subscribing on every connect restores the subscription after a
			// broker restart that lost the session, and is harmless otherwise.
			// Wait in a goroutine: the on-connect handler must not block paho.
			t := c.Subscribe(filter, 1, onMessage)
			go func() {
				if t.WaitTimeout(30*time.Second) && t.Error() == nil {
					once.Do(func() { close(subscribed) })
					o.Log.Info("mqtt subscribed", "filter", filter, "client_id", o.ClientID)
					return
				}
				o.Log.Error("mqtt subscribe failed", "filter", filter, "error", t.Error())
			}()
		})
	c := paho.NewClient(BufferedConnections(opts))
	t := c.Connect()
	if !t.WaitTimeout(30 * time.Second) {
		c.Disconnect(0)
		return nil, fmt.Errorf("mqtt connect to %s: timed out", redact(o.URL))
	}
	if err := t.Error(); err != nil {
		return nil, fmt.Errorf("mqtt connect to %s: %w", redact(o.URL), err)
	}
	select {
	case <-subscribed:
	case <-time.After(30 * time.Second):
		c.Disconnect(0)
		return nil, fmt.Errorf("mqtt subscribe to %s: timed out", filter)
	}
	return &Subscriber{client: c}, nil
}

// Close disconnects, giving queued acks quiesce to reach the broker.
func (s *Subscriber) Close(quiesce time.Duration) {
	s.client.Disconnect(uint(quiesce / time.Millisecond))
}

// redact drops the userinfo of a broker URL for logs and errors.
func redact(u string) string {
	if i := strings.Index(u, "@"); i >= 0 {
		if j := strings.Index(u, "://"); j >= 0 && j < i {
			return u[:j+3] + u[i+1:]
		}
	}
	return u
}
