package sim

import (
	"context"
	"fmt"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Devices are the fleet's MQTT connections: one per sensor with its own
// credentials (username and client id Sensor.Username, password its Key),
// as the broker requires; or, when the fleet has no keys, one anonymous
// connection for brokers that take anonymous clients.
type Devices struct {
	byTopic map[string]paho.Client
	all     []paho.Client
}

// ConnectDevices connects the fleet to broker. tune adjusts each client's
// options (buffered connections, say); nil leaves them as they are.
func ConnectDevices(broker, anonymousID string, fleet []*Sensor, tune func(*paho.ClientOptions) *paho.ClientOptions) (*Devices, error) {
	if tune == nil {
		tune = func(o *paho.ClientOptions) *paho.ClientOptions { return o }
	}
	d := &Devices{byTopic: map[string]paho.Client{}}
	var shared paho.Client
	for _, s := range fleet {
		if s.Key == "" {
			if shared == nil {
				shared = paho.NewClient(tune(paho.NewClientOptions().AddBroker(broker).SetClientID(anonymousID).
					SetAutoReconnect(true).SetConnectRetry(true)))
				d.all = append(d.all, shared)
			}
			d.byTopic[s.Topic()] = shared
			continue
		}
		c := paho.NewClient(tune(paho.NewClientOptions().AddBroker(broker).SetClientID(s.Username()).
			SetUsername(s.Username()).SetPassword(s.Key).SetAutoReconnect(true)))
		d.byTopic[s.Topic()] = c
		d.all = append(d.all, c)
	}
	// Connected together: each CONNECT waits for the broker's authenticator.
	errs := make([]error, len(d.all))
	var wg sync.WaitGroup
	for i, c := range d.all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if t := c.Connect(); !t.WaitTimeout(30 * time.Second) {
				errs[i] = fmt.Errorf("mqtt connect to %s: no CONNACK in time", broker)
			} else if t.Error() != nil {
				errs[i] = fmt.Errorf("mqtt connect to %s: %w", broker, t.Error())
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			d.Close()
			return nil, err
		}
	}
	return d, nil
}

// Publish sends m (QoS 1) on the connection of the sensor whose topic it is.
func (d *Devices) Publish(ctx context.Context, m Message) error {
	c, ok := d.byTopic[m.Topic]
	if !ok {
		return fmt.Errorf("no sensor of the fleet publishes to %s", m.Topic)
	}
	t := c.Publish(m.Topic, 1, false, m.Payload)
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close disconnects every connection.
func (d *Devices) Close() {
	for _, c := range d.all {
		c.Disconnect(500)
	}
}
