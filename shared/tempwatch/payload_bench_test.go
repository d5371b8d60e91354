package tempwatch_test

import (
	"testing"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// BenchmarkParsePayload parses the payload the end-to-end benchmark's devices send.
func BenchmarkParsePayload(b *testing.B) {
	in := []byte(`{"value":21.53,"ts":"2026-03-04T05:06:07.123Z"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tempwatch.ParsePayload(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseTopic parses a reading topic.
func BenchmarkParseTopic(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tempwatch.ParseTopic("tempwatch/bench-1/sensors/dev-0042/readings"); err != nil {
			b.Fatal(err)
		}
	}
}
