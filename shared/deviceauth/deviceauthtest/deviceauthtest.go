// Package deviceauthtest has a key store for tests of what serves
// deviceauth's decisions (the brokers' adapters), so they run without a
// database; the real store is tested against PostgreSQL.
package deviceauthtest

import (
	"context"

	"github.com/tempwatch/tempwatch/shared/deviceauth"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// Keys is a deviceauth.KeyLookup over a map of device keys; Down makes
// every lookup fail as a store outage does.
type Keys struct {
	Keys map[string]tempwatch.Device
	Down bool
}

var _ deviceauth.KeyLookup = (*Keys)(nil)

// ByKey returns the device of key, ENOTFOUND, or EUNAVAILABLE when Down.
func (k *Keys) ByKey(_ context.Context, key string) (tempwatch.Device, error) {
	if k.Down {
		return tempwatch.Device{}, tempwatch.Errorf(tempwatch.EUNAVAILABLE, "PostgreSQL is down")
	}
	if d, ok := k.Keys[key]; ok {
		return d, nil
	}
	return tempwatch.Device{}, tempwatch.Errorf(tempwatch.ENOTFOUND, "no such key")
}
