package deviceauth_test

import (
	"strings"
	"testing"

	"github.com/tempwatch/tempwatch/shared/deviceauth"
	"github.com/tempwatch/tempwatch/shared/deviceauth/deviceauthtest"
)

// BenchmarkAllowed is what a broker pays per message: the device's PUBLISH
// check and the delivery check to the bridge, against the least any check
// does as the reference: build the device's topic from its username and
// compare.
//
//	go test -run '^$' -bench . ./shared/deviceauth/
func BenchmarkAllowed(b *testing.B) {
	a, err := deviceauth.New(&deviceauthtest.Keys{}, deviceauth.Bridge{Password: bridgePass})
	if err != nil {
		b.Fatal(err)
	}
	const user, topic = "acme-cold-storage/cold-room-12", "tempwatch/acme-cold-storage/sensors/cold-room-12/readings"
	b.Run("reference: build and compare", func(b *testing.B) {
		for b.Loop() {
			slug, dev, _ := strings.Cut(user, "/")
			if "tempwatch/"+slug+"/sensors/"+dev+"/readings" != topic {
				b.Fatal("differs")
			}
		}
	})
	b.Run("device publish", func(b *testing.B) {
		for b.Loop() {
			if !a.Allowed(user, user, deviceauth.Publish, topic) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("delivery to the bridge", func(b *testing.B) {
		for b.Loop() {
			if !a.Allowed(deviceauth.DefaultBridgeUsername, "tempwatch-bridge", deviceauth.Subscribe, topic) {
				b.Fatal("refused")
			}
		}
	})
}
