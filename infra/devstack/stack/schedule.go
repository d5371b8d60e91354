package stack

import (
	"fmt"

	"github.com/tempwatch/tempwatch/infra/gateway/schedule"
)

// startSchedules runs the served functions' Schedule events (package
// schedule) through the stack's own Invoke, saying at start what runs how
// often and later what failed.
func (s *Stack) startSchedules() {
	if len(s.schedules) == 0 {
		return
	}
	log := &prefixWriter{w: s.cfg.Logs, mu: &logMu, prefix: "[scheduler] "}
	for _, r := range s.schedules {
		fmt.Fprintf(log, "%s: %s every %s (%s)\n", r.Function, r.Event, r.Every, r.Expression)
	}
	s.scheduler = schedule.Start(s.schedules, gatewayInvoker{s}, func(format string, args ...any) {
		fmt.Fprintf(log, format+"\n", args...)
	})
}
