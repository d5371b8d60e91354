package sim

import (
	"context"
	"fmt"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/tempwatch/tempwatch/infra/pahoconn"
)

// Devices are the fleet's MQTT connections: each sensor is a device of its
// own, logged in with its key, that may publish to its own topic only.
type Devices struct {
	conns map[*Sensor]paho.Client
}

// ConnectDevices connects every sensor of fleet (keys from API.Setup) to
// broker.
func ConnectDevices(broker string, fleet []*Sensor) (*Devices, error) {
	d := &Devices{conns: make(map[*Sensor]paho.Client, len(fleet))}
	for _, s := range fleet {
		if s.Key == "" {
			d.Close()
			return nil, fmt.Errorf("sensor %s has no device key (run the setup first)", s.Username())
		}
		c := paho.NewClient(pahoconn.Buffered(paho.NewClientOptions().AddBroker(broker).
			SetClientID(s.Username()).SetUsername(s.Username()).SetPassword(s.Key).
			SetAutoReconnect(true).SetConnectRetry(false)))
		if t := c.Connect(); !t.WaitTimeout(30*time.Second) || t.Error() != nil {
			d.Close()
			return nil, fmt.Errorf("mqtt connect %s as %s: %v", broker, s.Username(), t.Error())
		}
		d.conns[s] = c
	}
	return d, nil
}

// Publish sends m over its sensor's connection and waits for the PUBACK; it
// is a Publisher.
func (d *Devices) Publish(ctx context.Context, m Message) error {
	c, ok := d.conns[m.Sensor]
	if !ok {
		return fmt.Errorf("no connection for the sensor of %s", m.Topic)
	}
	t := c.Publish(m.Topic, 1, false, m.Payload)
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close disconnects every device.
func (d *Devices) Close() {
	for _, c := range d.conns {
		c.Disconnect(500)
	}
}
