package tempwatch

import (
	"errors"
	"fmt"
	"strings"
)

// DeviceRef names a device as its topic does: the client's slug and the
// device id, unique within the client.
type DeviceRef struct {
	ClientSlug string
	DeviceID   string
}

// String returns "slug/device-id".
func (d DeviceRef) String() string { return d.ClientSlug + "/" + d.DeviceID }

// Topic returns the MQTT topic the device publishes its readings to.
func (d DeviceRef) Topic() string {
	return "tempwatch/" + d.ClientSlug + "/sensors/" + d.DeviceID + "/readings"
}

// ParseTopic reads tempwatch/<client-slug>/sensors/<device-id>/readings,
// strictly: any other shape, or a slug or device id the schema would not
// hold, is an error naming what is wrong.
func ParseTopic(topic string) (DeviceRef, error) {
	parts := strings.Split(topic, "/")
	if len(parts) != 5 || parts[0] != "tempwatch" || parts[2] != "sensors" || parts[4] != "readings" {
		return DeviceRef{}, errors.New("topic is not tempwatch/<client-slug>/sensors/<device-id>/readings")
	}
	if !ValidSlug(parts[1]) {
		return DeviceRef{}, fmt.Errorf("topic client slug %q is not a valid slug", Truncate(parts[1], 64))
	}
	if !ValidDeviceID(parts[3]) {
		return DeviceRef{}, fmt.Errorf("topic device id %q is not a valid device id", Truncate(parts[3], 64))
	}
	return DeviceRef{ClientSlug: parts[1], DeviceID: parts[3]}, nil
}
